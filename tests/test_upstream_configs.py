"""Every gin config of the original DDSP 3.7.0, unchanged, binds and builds something that runs.

tests/data/upstream_gin/ is a verbatim copy of the original's ddsp/training/gin/ tree (the
wheel's files plus models/midiae/ and datasets/urmp/ from its repository). Each file is parsed
through `config.parse_gin` after the two files the original's `ddsp_run` always parses first
(optimization/base.gin, eval/basic.gin), with a model or dataset file where the file alone is
a mixin. Extra bindings only shrink sizes (clip length, batch size) or point the datasets at
local files; every architecture binding stays. Then the thing the file configures is built and
run on a tiny batch: a model (one forward pass, finite losses), a data provider (one batch with
the original's keys), evaluators (one evaluate call, values checked), the heuristics or the
trainer. Three files name configurables that 3.7.0 itself lacks: the original's `ddsp_run`
parses with skip_unknown=True, so gin skips them there, and here
(models/midiae/mixins/midi_encoder.gin: `HmmMidiAutoencoder`; datasets/urmp/{midi_base,
all_midi}.gin: `eval_discrete`); models/midiae/mixins/hmm_prior.gin binds `losses.HmmPrior`,
absent from 3.7.0 (its own ddsp_run fails on it too), and must fail the same way.
"""
import os

import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import spectral_ops
from ddsp_models.training import config, data, evaluators, heuristics, models
from ddsp_models.training.train_loop import tell_zipped_parts
from midi_fixtures import midi_notes

HERE = os.path.dirname(__file__)
UPSTREAM = os.path.join(HERE, "data", "upstream_gin")
GOLDEN = os.path.join(HERE, "data", "golden")
DEFAULTS = ["optimization/base.gin", "eval/basic.gin"]  # what the original's ddsp_run parses first
SR, FR = 16000, 250
SECONDS = 0.256  # 4096 samples, 64 frames: the clip length of the tiny batches
VST_SECONDS = 0.24  # 3840 samples: 12 hops of models/vst/vst.gin's 50 Hz frames (13 centred)


def all_upstream_files():
    found = []
    for root, _, files in os.walk(UPSTREAM):
        found += [os.path.relpath(os.path.join(root, f), UPSTREAM) for f in files if f.endswith(".gin")]
    return sorted(found)


def parse(files, bindings=(), skip_unknown=False):
    gin.clear_config()
    return config.parse_gin(DEFAULTS + list(files), list(bindings), gin_search_paths=[UPSTREAM],
                            skip_unknown=skip_unknown)


def as_numpy(batch):
    """A batch's arrays; a zipped batch (a tuple of dicts, as the original) stays a tuple."""
    if isinstance(batch, tuple):
        return tuple(as_numpy(part) for part in batch)
    return {k: v.numpy() if hasattr(v, "numpy") else np.asarray(v) for k, v in batch.items()}


# ------------------------------------------------------------------------ tiny data
def tone_features(seconds=0.5, n=1, sample_rate=SR, frame_rate=FR, centered=False):
    """A 220 Hz harmonic tone: audio (and audio_16k), f0_hz, f0_confidence, loudness_db."""
    n_samples = int(seconds * sample_rate)
    t = np.arange(n_samples) / sample_rate
    audio = sum(0.3 / k * np.sin(2 * np.pi * 220.0 * k * t) for k in (1, 2, 3)).astype(np.float32)
    audio_16k = audio if sample_rate == 16000 else tone_features(seconds, 1)["audio"][0]
    n_frames = int(seconds * frame_rate) + int(centered)
    loudness = spectral_ops.compute_loudness(audio_16k[None], 16000, frame_rate)[0].numpy()
    loudness = np.pad(loudness, (0, max(0, n_frames - len(loudness))), mode="edge")[:n_frames]
    features = {"audio": audio, "audio_16k": audio_16k, "f0_hz": np.full(n_frames, 220.0, np.float32),
                "f0_confidence": np.full(n_frames, 0.95, np.float32), "loudness_db": loudness.astype(np.float32)}
    return {k: np.repeat(v[None], n, axis=0) for k, v in features.items()}


def midi_features(seconds=0.5, n=1):
    notes = midi_notes(n_examples=n, seconds=seconds, n_notes=2)
    return {k: v for k, v in notes.items() if k not in ("pitches", "velocities")}


def write_records(path, features):
    """One record per example of `features` (flattened float arrays, as the original writes)."""
    rows = [{k: v[i] for k, v in features.items()} for i in range(len(next(iter(features.values()))))]
    data.write_tfrecord(path, rows)
    return str(path)


def synthetic_notes_records(path, n_timesteps, n_harmonics=100, n_mags=65, n=2):
    """Records in the format of the original's synthetic-notes dataset (controls, no audio)."""
    rng = np.random.default_rng(0)
    dist = rng.uniform(0.0, 1.0, (n, n_timesteps, n_harmonics))
    dist /= dist.sum(-1, keepdims=True)
    f0 = rng.uniform(100.0, 400.0, (n, 1, 1)) * np.ones((n, n_timesteps, 1))
    rows = {"f0_hz": f0, "harm_amp": np.full((n, n_timesteps, 1), 0.3), "harm_dist": dist,
            "sin_freqs": f0 * np.arange(1, n_harmonics + 1), "sin_amps": 0.3 * dist,
            "noise_magnitudes": rng.uniform(0.0, 0.01, (n, n_timesteps, n_mags))}
    return write_records(path, {k: v.astype(np.float32) for k, v in rows.items()})


# ------------------------------------------------------------------------ runners
def run_model(batch, provider=None):
    """Builds `get_model()` (told a zipped provider's parts, as `train` does) and runs one
    forward pass with losses; checks they are finite."""
    model = models.get_model()
    tell_zipped_parts(provider, model)
    outputs, losses = model(batch, training=True, return_losses=True)
    assert "total_loss" in losses and len(losses) > 1
    for name, value in losses.items():
        assert np.isfinite(float(value)), name
    audio = model.get_audio_from_outputs(outputs).numpy()
    assert np.all(np.isfinite(audio)) and np.std(audio) > 0.0
    return model, outputs, losses


def run_bound_evaluators(model, batch, outputs, losses):
    """The evaluators eval/*.gin names, one evaluate call each on a model's outputs: {tag: mean}."""
    classes = evaluators.bound_evaluator_classes()
    assert classes
    outputs = dict(outputs, audio_gen=model.get_audio_from_outputs(outputs))
    metrics = {}
    for evaluator_class in classes:
        evaluator = evaluator_class(SR, FR)
        evaluator.evaluate(batch, outputs, losses)
        metrics.update(evaluator.flush(0))
    return metrics


def provider_batch(binding, batch_size=1):
    provider = config.query_binding(binding)
    assert provider is not None, binding
    return provider, as_numpy(next(iter(provider.get_batch(batch_size, shuffle=False))))


def check_autoencoder_metrics(metrics):
    """The Autoencoder passes f0 through: f0 metrics exact; loudness finite."""
    assert metrics["metrics/f0/f0_dist"] == pytest.approx(0.0, abs=1e-3)
    assert metrics["metrics/f0/raw_pitch_accuracy"] == 1.0
    assert np.isfinite(metrics["metrics/loudness/loudness_db"])
    assert np.isfinite(metrics["losses/total_loss"])


def sizes(seconds, sample_rate=SR, frame_rate=FR):
    """Clip-length bindings of the synths and preprocessors (sizes only)."""
    n_samples, n_frames = int(seconds * sample_rate), int(seconds * frame_rate)
    return [f"Harmonic.n_samples = {n_samples}", f"FilteredNoise.n_samples = {n_samples}",
            f"F0LoudnessPreprocessor.time_steps = {n_frames}"]


# ------------------------------------------------------------------------ models
def case_autoencoder(model_file):
    def run(tmp_path):
        parse([model_file], sizes(SECONDS))
        batch = tone_features(SECONDS)
        model, outputs, losses = run_model(batch)
        np.testing.assert_allclose(outputs["f0_hz"][..., 0], batch["f0_hz"], rtol=1e-6)
        metrics = run_bound_evaluators(model, batch, outputs, losses)  # eval/basic.gin (ddsp_run's default)
        assert metrics == {f"losses/{name}": pytest.approx(float(value)) for name, value in losses.items()}
    return run


def case_vst(sample_rate, crop):
    """models/vst/*.gin: OnlineF0PowerPreprocessor at 50 Hz, centred frames, power from the
    16 kHz audio; the synths make n_samples = audio + one frame, cropped back."""
    def run(tmp_path):
        seconds = 0.5
        parse([f"models/vst/vst{'' if sample_rate == 16000 else f'_{sample_rate // 1000}k'}.gin"],
              [f"n_samples = {int(seconds * sample_rate) + crop}"])
        batch = tone_features(seconds, sample_rate=sample_rate, frame_rate=50, centered=True)
        _, outputs, _ = run_model(batch)
        assert outputs["pw_db"].shape[1] == 26  # 8000 samples at 16 kHz / 320 + 1
        expected = spectral_ops.compute_power(batch["audio_16k"], 16000, 50, 1024, padding="center")
        np.testing.assert_allclose(outputs["pw_db"][..., 0], expected, atol=1e-4)
        assert outputs["harmonic/signal"].shape[1] == int(seconds * sample_rate) + crop
    return run


RECON_LOSSES = ("spectral_loss_synth", "f0_reconstruction", "amplitude_reconstruction",
                "harmonic_distribution_reconstruction", "noise_reconstruction")


def case_midiae(extra_files=(), skip_unknown=False, encoder=False):
    def run(tmp_path):
        parse(["models/midiae/midiae.gin", *extra_files], sizes(SECONDS), skip_unknown=skip_unknown)
        batch = midi_features(SECONDS)
        model, outputs, losses = run_model(batch)
        assert (model.midi_encoder is not None) == encoder
        assert set(RECON_LOSSES) <= set(losses)  # the recon_lossgroup DAG over the model's outputs
        assert outputs["midi_decoder/f0_midi"].shape == outputs["f0_midi"].shape
        metrics = run_bound_evaluators(model, batch, outputs, losses)  # eval/midi_ae.gin
        if not encoder:  # ground-truth MIDI: the learned piano roll is the reference
            assert metrics["metrics/midi_learned/note_f1"] == 1.0
        assert 0.0 <= metrics["metrics/midi_learned/frame_f1"] <= 1.0
    return run


def case_empty_mixin(tmp_path):
    """models/midiae/mixins/_.gin is empty: midiae.gin with it binds exactly what it binds alone."""
    parse(["models/midiae/midiae.gin"], sizes(SECONDS))
    alone = gin.config_str()
    parse(["models/midiae/midiae.gin", "models/midiae/mixins/_.gin"], sizes(SECONDS))
    assert gin.config_str() == alone and "MidiToHarmonicDecoder" in alone


def case_recon_lossgroup(tmp_path):
    """The mixin's LossGroup over outputs: each term's weight and type (f0: 50 x L2 where the
    weights are 1; amplitudes: 0.5 x L1; ...) and the spectral loss of equal audio = 0."""
    from ddsp_models.losses import LossGroup

    parse(["models/midiae/mixins/recon_lossgroup.gin"])
    with gin.config_scope("recon_lossgroup"):  # as midiae.gin's @recon_lossgroup/losses.LossGroup()
        group = LossGroup()
    outputs = {"audio": np.zeros((1, 4096), np.float32) + 0.1, "synth_audio": np.zeros((1, 4096), np.float32) + 0.1,
               "f0_midi": np.full((1, 8, 1), 60.0, np.float32), "f0_midi_pred": np.full((1, 8, 1), 62.0, np.float32),
               "f0_loss_weights": np.ones((1, 8, 1), np.float32), "amps": np.zeros((1, 8, 1), np.float32),
               "amps_pred": np.full((1, 8, 1), 0.2, np.float32), "hd": np.zeros((1, 8, 4), np.float32),
               "hd_pred": np.full((1, 8, 4), 0.1, np.float32), "noise": np.zeros((1, 8, 3), np.float32),
               "noise_pred": np.full((1, 8, 3), 0.4, np.float32)}
    losses = {k: float(v) for k, v in group.get_losses_dict(outputs).items()}
    assert losses["f0_reconstruction"] == pytest.approx(50.0 * 4.0)
    assert losses["amplitude_reconstruction"] == pytest.approx(0.5 * 0.2)
    assert losses["harmonic_distribution_reconstruction"] == pytest.approx(500.0 * 0.1)
    assert losses["noise_reconstruction"] == pytest.approx(0.5 * 0.4)
    assert losses["spectral_loss_synth"] == pytest.approx(0.0, abs=1e-6)


def case_z_midiae(tmp_path):
    parse(["models/midiae/z_midiae.gin"], sizes(SECONDS))
    batch = midi_features(SECONDS)
    batch["instrument_id"] = np.array([11], np.int64)  # OneHotEncoder.vocab_size = 13
    model, outputs, losses = run_model(batch)
    assert outputs["z_midi"].shape[-1] == 256  # FcStackOut.n_out
    assert set(RECON_LOSSES) <= set(losses)
    metrics = run_bound_evaluators(model, batch, outputs, losses)
    assert metrics["metrics/midi_learned/note_f1"] == 1.0


def case_hmm_prior(tmp_path):
    """Not loadable in 3.7.0 either: `losses.HmmPrior` never shipped."""
    with pytest.raises(ValueError, match=r"hmm_prior\.gin.*HmmPrior"):
        parse(["models/midiae/midiae.gin", "models/midiae/mixins/hmm_prior.gin"], sizes(SECONDS))


def inverse_bindings(tmp_path, n_timesteps=32):
    """Local records for the DDSP-inv datasets (the config's GCS paths stay bound; these
    scoped bindings win) and the clip length (sizes). The part names of finetune_dataset.gin's
    zipped batches are not bound: `train_loop.tell_zipped_parts` hands the ZippedProvider's
    names to the model, as `train` does."""
    notes = synthetic_notes_records(tmp_path / "notes.tfrecord", n_timesteps)
    audio = write_records(tmp_path / "audio.tfrecord", tone_features(SECONDS, n=2))
    return [f"data.SyntheticNotes.file_pattern = '{notes}'",
            f"SyntheticNotes.n_timesteps = {n_timesteps}",
            f"train_data/TFRecordProvider.file_pattern = '{audio}'",
            f"test_data/TFRecordProvider.file_pattern = '{audio}'",
            f"TFRecordProvider.example_secs = {SECONDS}",
            f"InverseSynthesis.n_samples = {int(SECONDS * SR)}"]


SYNTHETIC_KEYS = {"f0_hz", "harm_amp", "harm_dist", "sin_amps", "sin_freqs", "noise_magnitudes"}


def case_pretrain_dataset(tmp_path):
    """The original's synthetic-notes records: its controls, [n_timesteps, size] each."""
    parse(["papers/icml2020/pretrain_dataset.gin"], inverse_bindings(tmp_path))
    for binding in ("train.data_provider", "evaluate.data_provider"):
        _, batch = provider_batch(binding, batch_size=2)
        assert set(batch) == SYNTHETIC_KEYS
        assert batch["sin_freqs"].shape == (2, 32, 100) and batch["noise_magnitudes"].shape == (2, 32, 65)
    assert config.query_binding("evaluate.num_batches") == 256


def case_finetune_dataset(tmp_path):
    """ZippedProvider(data_providers=[SyntheticNotes, TFRecordProvider]): both parts per batch."""
    parse(["papers/icml2020/finetune_dataset.gin"], inverse_bindings(tmp_path))
    _, (synthetic, real) = provider_batch("train.data_provider", batch_size=2)  # the original's tuple
    assert set(synthetic) == SYNTHETIC_KEYS
    assert set(real) == {"audio", "audio_16k", "f0_hz", "f0_confidence", "loudness_db"}
    np.testing.assert_array_equal(real["audio"], tone_features(SECONDS, n=2)["audio"])
    _, batch = provider_batch("evaluate.data_provider")
    assert batch["audio"].shape == (1, int(SECONDS * SR))


def case_inverse(model_file, dataset_file):
    """DDSP-inv models on their datasets (the synthetic notes' audio rendered from their
    controls by the model), evaluated by eval/basic_f0_ld_twm.gin's evaluators."""
    def run(tmp_path):
        parse([model_file, dataset_file], inverse_bindings(tmp_path))
        provider, batch = provider_batch("train.data_provider")
        model, outputs, losses = run_model(batch, provider)
        # The real part's outputs when zipped (finetune_dataset), as the original returns them.
        assert outputs["harm_audio"].shape == (1, int(SECONDS * SR))
        supervised = [name for name in losses if "consistency" in name]
        assert supervised, sorted(losses)
        if dataset_file.endswith("pretrain_dataset.gin"):  # evaluate on the same notes
            batch = evaluators.prepare_batch(model, batch)
            metrics = run_bound_evaluators(model, batch, outputs, losses)
            assert {"losses/total_loss", "metrics/loudness/loudness_db", "metrics/f0/f0_dist",
                    "metrics/f0_twm/f0_dist"} <= set(metrics)
            assert all(np.isfinite(v) for k, v in metrics.items() if "f0" not in k)
    return run


def case_paper_solo(model_file):
    """papers/iclr2020/{solo,tiny}_instrument.gin: the model, trained on the original's own
    TFRecords (tests/data/golden, 1 s) through datasets/tfrecord.gin, with eval/basic_f0_ld.gin."""
    def run(tmp_path):
        pattern = os.path.join(GOLDEN, "upstream_same.tfrecord")
        parse([model_file], sizes(1.0) + [f"TFRecordProvider.file_pattern = '{pattern}'",
                                          "TFRecordProvider.example_secs = 1"])
        _, batch = provider_batch("train.data_provider", batch_size=2)
        assert set(batch) == {"audio", "audio_16k", "f0_hz", "f0_confidence", "loudness_db"}
        model, outputs, losses = run_model(batch)
        check_autoencoder_metrics(run_bound_evaluators(model, batch, outputs, losses))
    return run


def case_nsynth_ae(tmp_path):
    """papers/iclr2020/nsynth_ae.gin: models/ae.gin on NSynth (a fake TFDS copy), its 4 s
    examples cut to the tiny clip length."""
    from data_fixtures import write_fake_nsynth

    write_fake_nsynth(tmp_path, n=1)
    parse(["papers/iclr2020/nsynth_ae.gin"], sizes(SECONDS) + [f"NSynthTfds.data_dir = '{tmp_path}'"])
    _, batch = provider_batch("train.data_provider")
    assert batch["audio"].shape == (1, 64000) and batch["f0_hz"].shape == (1, 1000)
    n_samples, n_frames = int(SECONDS * SR), int(SECONDS * FR)
    batch = {k: v[:, :n_samples] if k == "audio" else v[:, :n_frames] if v.ndim == 2 else v
             for k, v in batch.items()}
    model, outputs, losses = run_model(batch)
    check_autoencoder_metrics(run_bound_evaluators(model, batch, outputs, losses))


# ------------------------------------------------------------------------ datasets
NSYNTH_KEYS = {"audio", "f0_hz", "f0_confidence", "loudness_db", "pitch", "instrument_source",
               "instrument_family", "instrument"}


def case_nsynth(tmp_path):
    from data_fixtures import write_fake_nsynth

    rows = write_fake_nsynth(tmp_path, n=2)
    parse(["datasets/nsynth.gin"], [f"NSynthTfds.data_dir = '{tmp_path}'"])
    for binding, split in (("train.data_provider", "train"), ("evaluate.data_provider", "valid")):
        provider, batch = provider_batch(binding, batch_size=2)
        assert provider.split == split
        assert NSYNTH_KEYS <= set(batch)
        assert sorted(batch["instrument"]) == sorted(r["instrument"]["label"] for r in rows)
    assert config.query_binding("evaluate.num_batches") == 50


def case_tfrecord(tmp_path):
    pattern = os.path.join(GOLDEN, "upstream_center.tfrecord")
    parse(["datasets/tfrecord.gin"], [f"TFRecordProvider.file_pattern = '{pattern}'",
                                      "TFRecordProvider.example_secs = 1", "TFRecordProvider.sample_rate = 8000",
                                      "TFRecordProvider.centered = True"])
    for binding in ("train.data_provider", "evaluate.data_provider", "sample.data_provider"):
        _, batch = provider_batch(binding)
        assert set(batch) == {"audio", "audio_16k", "f0_hz", "f0_confidence", "loudness_db"}
        assert (batch["audio"].shape[1], batch["audio_16k"].shape[1], batch["f0_hz"].shape[1]) == (8000, 16000, 251)


def case_datasets_base(tmp_path):
    """datasets/base.gin configures the original's `evaluate` / `sample` loops: run both on a
    checkpoint of a model (restored, its step read from the name) with the config's settings
    (batch sizes shrunk)."""
    parse(["models/vst/vst.gin", "datasets/base.gin"],
          [f"n_samples = {int(VST_SECONDS * SR) + 320}", "evaluate.batch_size = 2", "evaluate.num_batches = 1",
           "sample.batch_size = 1"])
    assert config.query_binding("sample.ckpt_delay_secs") == 300
    batch = tone_features(VST_SECONDS, n=2, frame_rate=50, centered=True)
    provider = data.InMemoryProvider(batch, frame_rate=50)
    model, _, losses = run_model(batch)
    tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))  # ckpt-1
    metrics = evaluators.evaluate(provider, model, save_dir=str(tmp_path), run_once=True)
    assert set(metrics) == {f"losses/{name}" for name in losses}
    evaluators.sample(provider, model, save_dir=str(tmp_path), run_once=True)
    steps, tags = set(), set()
    for event_file in os.listdir(tmp_path / "summaries" / "eval"):
        for event in tf.compat.v1.train.summary_iterator(str(tmp_path / "summaries" / "eval" / event_file)):
            steps |= {event.step for _ in event.summary.value}
            tags |= {value.tag for value in event.summary.value}
    assert steps == {1} and {"losses/total_loss", "audio_generated", "spectrograms"} <= tags


URMP_KEYS = {"audio", "f0_hz", "f0_confidence", "loudness_db"}


def urmp_record(midi: bool):
    """One 4 s URMP example (the provider's fixed length): a tone, and with `midi` one note
    (MIDI 57, frames 100-499, velocity 90) played by a cello ('vc')."""
    features = {k: v[0] for k, v in tone_features(4.0).items() if k != "audio_16k"}
    if midi:
        roll = np.zeros((1000, 128), np.float32)
        roll[100:500, 57] = 90.0
        onsets, offsets = np.zeros_like(roll), np.zeros_like(roll)
        onsets[100, 57], offsets[499, 57] = 1.0, 1.0
        features.update(note_active_velocities=roll, note_active_frame_indices=(roll > 0).astype(np.float32),
                        note_onsets=onsets, note_offsets=offsets, instrument_id=np.array("vc"),
                        recording_id=np.array("AuSep_1_vc_01"), power_db=features["loudness_db"])
    return features


def case_urmp(gin_file, file_name, midi=False):
    def run(tmp_path):
        data.write_tfrecord(tmp_path / file_name, [urmp_record(midi)])
        parse([gin_file], [f"Urmp.base_dir = '{tmp_path}'"], skip_unknown=["eval_discrete"] if midi else False)
        for binding, split in (("train.data_provider", "train"), ("evaluate.data_provider", "test")):
            provider = config.query_binding(binding)
            assert provider.split == split
        _, batch = provider_batch("train.data_provider")
        assert URMP_KEYS <= set(batch) and batch["audio"].shape == (1, 64000)
        if midi:
            assert batch["instrument_id"][0] == 2  # 'vc'
            assert batch["f0_hz"].shape == (1, 1000, 1)
            assert np.all(batch["midi"][0, 100:500] == 57) and batch["onsets"][0].nonzero()[0].tolist() == [100]
            assert batch["offsets"][0].nonzero()[0].tolist() == [499]
    return run


# ------------------------------------------------------------------------ evaluators
def bound_evaluators():
    return [cls(SR, FR) for cls in evaluators.bound_evaluator_classes()]


def case_eval_basic(tmp_path):
    """eval/basic.gin: BasicEvaluator averages the losses over batches and writes the
    original and generated audio and their spectrograms."""
    parse(["models/solo_instrument.gin", "eval/basic.gin"], sizes(SECONDS))
    batch = tone_features(SECONDS)
    outputs = {"audio_gen": 0.5 * batch["audio"]}
    (evaluator,) = bound_evaluators()
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for total in (1.0, 2.0):
            evaluator.evaluate(batch, outputs, {"total_loss": total, "spectral_loss": 3.0})
        evaluator.sample(batch, outputs, step=7)
        assert evaluator.flush(7) == {"losses/total_loss": 1.5, "losses/spectral_loss": 3.0}
    writer.flush()
    tags = set()
    for event_file in os.listdir(tmp_path):
        for event in tf.compat.v1.train.summary_iterator(str(tmp_path / event_file)):
            tags |= {value.tag for value in event.summary.value if event.step == 7}
    assert {"audio_original", "audio_generated", "spectrograms", "losses/total_loss"} <= tags


def case_eval_f0_ld(tmp_path):
    """eval/basic_f0_ld.gin: a perfect resynthesis scores loudness 0 dB and f0 0 semitones."""
    parse(["models/solo_instrument.gin", "eval/basic_f0_ld.gin"], sizes(SECONDS))
    batch = tone_features(SECONDS)
    outputs = {"audio_gen": batch["audio"], "f0_hz": batch["f0_hz"][..., None]}
    metrics = {}
    for evaluator in bound_evaluators():
        evaluator.evaluate(batch, outputs, {"total_loss": 1.5})
        metrics.update(evaluator.flush(0))
    assert metrics["losses/total_loss"] == 1.5
    assert metrics["metrics/loudness/loudness_db"] == pytest.approx(0.0, abs=1e-4)
    assert metrics["metrics/f0/f0_dist"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["metrics/f0/raw_pitch_accuracy"] == 1.0
    # An octave too high: chroma still right, pitch not.
    for evaluator in bound_evaluators()[1:]:
        evaluator.evaluate(batch, {"audio_gen": batch["audio"], "f0_hz": 2.0 * batch["f0_hz"]}, {})
        wrong = evaluator.flush(0)
    assert wrong["metrics/f0/f0_dist"] == pytest.approx(12.0, abs=1e-4)
    assert (wrong["metrics/f0/raw_pitch_accuracy"], wrong["metrics/f0/raw_chroma_accuracy"]) == (0.0, 1.0)


def case_eval_twm(tmp_path):
    """eval/basic_f0_ld_twm.gin: TWM picks 220 Hz from a 220 Hz harmonic series."""
    parse(["papers/icml2020/pretrain_model.gin", "eval/basic_f0_ld_twm.gin"])
    batch = tone_features(SECONDS)
    n_frames = batch["f0_hz"].shape[1]
    sin_freqs = np.tile(220.0 * np.arange(1, 9, dtype=np.float32), (1, n_frames, 1))
    sin_amps = np.tile(0.5 / np.arange(1, 9, dtype=np.float32), (1, n_frames, 1))
    outputs = {"audio_gen": batch["audio"], "f0_hz": batch["f0_hz"][..., None], "sin_freqs": sin_freqs,
               "sin_amps": sin_amps}
    metrics = {}
    for evaluator in bound_evaluators():
        evaluator.evaluate(batch, outputs, {"total_loss": 0.0})
        metrics.update(evaluator.flush(0))
    assert metrics["metrics/f0_twm/f0_dist"] == pytest.approx(0.0, abs=1e-4)
    assert metrics["metrics/f0_twm/raw_pitch_accuracy"] == 1.0


def case_eval_midi_ae(tmp_path):
    """eval/midi_ae.gin: note metrics of a piano roll against the features' notes."""
    parse(["models/midiae/midiae.gin", "eval/midi_ae.gin"], sizes(SECONDS))
    batch = midi_features(SECONDS)
    reference = batch["note_active_velocities"] * (batch["note_active_frame_indices"] > 0)
    for roll, f1 in ((reference, 1.0), (np.roll(reference, 5, axis=-1), 0.0)):
        outputs = {"audio_gen": batch["audio"], "pianoroll": roll}
        metrics = {}
        for evaluator in bound_evaluators():
            evaluator.evaluate(batch, outputs, {"total_loss": 0.0})
            metrics.update(evaluator.flush(0))
        assert metrics["metrics/midi_learned/note_f1"] == f1
        assert metrics["metrics/midi_learned/frame_f1"] == f1


def two_note_controls(n_frames=125, sample_rate=SR):
    """Controls of one example: 220 Hz then 330 Hz (from frame 60), the harmonic amplitude
    wobbling around 0.5 with a dip at the change, the audio silent there."""
    frames = np.arange(n_frames)
    f0 = np.where(frames < 60, 220.0, 330.0).astype(np.float32)
    amps = 0.5 * (1.0 + 0.1 * np.sin(2 * np.pi * frames / 7.0))
    amps[57:63] = 1e-3
    hop = sample_rate // FR
    audio = 0.4 * np.sin(2 * np.pi * np.cumsum(np.repeat(f0, hop)) / sample_rate)
    audio[57 * hop:63 * hop] = 0.0
    return {"f0_hz": f0[None, :, None], "harmonic/controls/amplitudes": amps[None, :, None].astype(np.float32),
            "audio": audio[None].astype(np.float32)}


def case_heuristic(binarizer):
    """eval/heuristic*.gin bind `segment_notes_batch`'s heuristics: two notes found (MIDI 57
    then 64), and the MidiHeuristicEvaluator's notes match annotations of them."""
    def run(tmp_path):
        gin_file = "eval/heuristic.gin" if binarizer == "midi_heuristic" else "eval/heuristic_power.gin"
        parse([gin_file])
        assert config.query_binding("segment_notes_batch.binarize_f").__name__ == binarizer
        controls = two_note_controls()
        (notes,) = heuristics.segment_notes_batch(controls_batch=controls)
        assert [n.pitch for n in notes.notes] == [57, 64]
        assert notes.notes[0].start_time == 0.0 and notes.notes[1].end_time == pytest.approx(0.5)
        roll = np.zeros((1, 125, 128), np.float32)
        roll[0, :57, 57], roll[0, 63:, 64] = 100.0, 100.0
        evaluator = evaluators.MidiHeuristicEvaluator(SR, FR)
        evaluator.evaluate({"note_active_velocities": roll}, controls, {})
        assert evaluator.flush(0)["metrics/midi_heuristic/note_onset_f1"] == 1.0
    return run


# ------------------------------------------------------------------------ optimization
def case_optimization(gin_file, batch_size):
    """optimization/*.gin: the Trainer's Adam with 3e-4 decaying by 0.98 per 10000 steps,
    gradients clipped at 3, 100 checkpoints kept; train's batch size and steps."""
    def run(tmp_path):
        from ddsp_models.training.trainer import Trainer

        parse(["models/vst/vst.gin", gin_file], [f"n_samples = {int(VST_SECONDS * SR) + 320}"])
        assert config.query_binding("train.batch_size") == batch_size
        assert config.query_binding("train.num_steps") == 1000000
        trainer = Trainer(models.get_model())
        assert (trainer.grad_clip_norm, trainer.checkpoints_to_keep) == (3.0, 100)
        assert trainer.learning_rate() == pytest.approx(3e-4)
        trainer.optimizer.iterations.assign(20000)
        assert trainer.learning_rate() == pytest.approx(3e-4 * 0.98 ** 2)
        if gin_file == "optimization/base.gin":  # one step on a tiny batch
            trainer.optimizer.iterations.assign(0)
            batch = tone_features(VST_SECONDS, n=2, frame_rate=50, centered=True)
            trainer.build(batch)
            losses = trainer.train_step(batch)
            assert np.isfinite(float(losses["total_loss"])) and trainer.get_step() == 1
    return run


CASES = {
    "datasets/base.gin": case_datasets_base,
    "datasets/nsynth.gin": case_nsynth,
    "datasets/tfrecord.gin": case_tfrecord,
    "datasets/urmp/all.gin": case_urmp("datasets/urmp/all.gin", "all_instruments_train.tfrecord"),
    "datasets/urmp/base.gin": case_urmp("datasets/urmp/base.gin", "urmp_tpt_solo_ddsp_conditioning_train.tfrecord"),
    "datasets/urmp/all_midi.gin": case_urmp("datasets/urmp/all_midi.gin", "all_instruments_train.tfrecord", midi=True),
    "datasets/urmp/midi_base.gin": case_urmp("datasets/urmp/midi_base.gin",
                                             "urmp_tpt_solo_ddsp_conditioning_train.tfrecord", midi=True),
    "eval/basic.gin": case_eval_basic,
    "eval/basic_f0_ld.gin": case_eval_f0_ld,
    "eval/basic_f0_ld_twm.gin": case_eval_twm,
    "eval/heuristic.gin": case_heuristic("midi_heuristic"),
    "eval/heuristic_power.gin": case_heuristic("midi_heuristic_power"),
    "eval/midi_ae.gin": case_eval_midi_ae,
    "models/ae.gin": case_autoencoder("models/ae.gin"),
    "models/solo_instrument.gin": case_autoencoder("models/solo_instrument.gin"),
    "models/midiae/midiae.gin": case_midiae(),
    "models/midiae/z_midiae.gin": case_z_midiae,
    "models/midiae/mixins/_.gin": case_empty_mixin,
    "models/midiae/mixins/hmm_prior.gin": case_hmm_prior,
    "models/midiae/mixins/midi_encoder.gin": case_midiae(["models/midiae/mixins/midi_encoder.gin"],
                                                         skip_unknown=["HmmMidiAutoencoder"], encoder=True),
    "models/midiae/mixins/recon_lossgroup.gin": case_recon_lossgroup,
    "models/vst/vst.gin": case_vst(16000, 320),
    "models/vst/vst_32k.gin": case_vst(32000, 640),
    "models/vst/vst_48k.gin": case_vst(48000, 960),
    "optimization/base.gin": case_optimization("optimization/base.gin", 32),
    "optimization/base_tpu.gin": case_optimization("optimization/base_tpu.gin", 64),
    "papers/iclr2020/nsynth_ae.gin": case_nsynth_ae,
    "papers/iclr2020/solo_instrument.gin": case_paper_solo("papers/iclr2020/solo_instrument.gin"),
    "papers/iclr2020/tiny_instrument.gin": case_paper_solo("papers/iclr2020/tiny_instrument.gin"),
    "papers/icml2020/pretrain_model.gin": case_inverse("papers/icml2020/pretrain_model.gin",
                                                       "papers/icml2020/pretrain_dataset.gin"),
    "papers/icml2020/pretrain_dataset.gin": case_pretrain_dataset,
    "papers/icml2020/finetune_model.gin": case_inverse("papers/icml2020/finetune_model.gin",
                                                       "papers/icml2020/finetune_dataset.gin"),
    "papers/icml2020/finetune_dataset.gin": case_finetune_dataset,
}


def test_every_upstream_file_has_a_case():
    assert sorted(CASES) == all_upstream_files()


@pytest.mark.parametrize("gin_file", all_upstream_files())
def test_upstream_config_binds_builds_and_runs(gin_file, tmp_path):
    CASES[gin_file](tmp_path)
