"""Records tiny model folders trained by the original DDSP 3.7.0, for tests/test_compat.py.

Run with the original's own environment (TF 2.15 / Keras 2), never the project's:

    /work/upstream-venv/bin/python scripts/golden/record_upstream_models.py [OUT_DIR]

For each of the original's ``models/solo_instrument.gin`` and ``models/ae.gin`` (shrunk
with gin bindings: 1 s clips, 250 frames, 16-unit GRUs, a 4000-sample reverb) it trains
3 steps with the original's own `train_util.train` on a small synthetic in-memory dataset
(harmonic tones; f0, confidence and loudness given, so no CREPE), which writes the model
folder exactly as the original's training does (``ckpt-<step>.*``, ``checkpoint``,
``operative_config-0.gin``). It adds the ``dataset_statistics.pkl`` that the original's
colab helper writes (a pickle of `postprocessing.compute_dataset_statistics`), then runs
the trained model on a fixed feature batch and stores, in ``golden.npz``: the input
features, the decoder's raw outputs, the synthesizer controls (amplitudes, harmonic
distribution, noise magnitudes), the harmonic signal, the reverb applied to it, the
encoder's MFCCs (ae) and the statistics' quantile transform of a few loudness levels.
Summaries and older checkpoints are removed to keep each folder small.
"""
import os
import pickle
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import ddsp  # noqa: E402
import ddsp.training  # noqa: E402
import gin  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ddsp.training import data, models, postprocessing, train_util, trainers  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "tests", "data", "golden", "upstream_models")
# Trained and run on note rolls, with 4 s clips of audio: the original's MidiAutoencoder builds
# its synths in Python (`synths.Harmonic()`), so gin cannot shrink their 64000 samples.
MIDI_MODELS = ("midiae",)
MIDI_N_SAMPLES = 64000
UPSTREAM_GIN = os.path.join(REPO, "tests", "data", "upstream_gin")  # the original's gin tree
SAMPLE_RATE, N_SAMPLES, N_FRAMES = 16000, 16000, 250

COMMON_BINDINGS = [
    f"F0LoudnessPreprocessor.time_steps = {N_FRAMES}",
    f"Harmonic.n_samples = {N_SAMPLES}",
    f"FilteredNoise.n_samples = {N_SAMPLES}",
    "RnnFcDecoder.rnn_channels = 16",
    "RnnFcDecoder.ch = 16",
    "RnnFcDecoder.layers_per_stack = 1",
]
MODELS = {
    "solo_instrument": ("models/solo_instrument.gin", COMMON_BINDINGS + [
        "RnnFcDecoder.output_splits = (('amps', 1), ('harmonic_distribution', 20), "
        "('noise_magnitudes', 17))",
        "Reverb.reverb_length = 4000",
    ]),
    # The repository's midiae.gin (not in the 3.7.0 wheel): tests/data/upstream_gin.
    "midiae": ("models/midiae/midiae.gin", [
        f"F0LoudnessPreprocessor.time_steps = {N_FRAMES}",
        # 3.7.0's MidiAutoencoder hands its preprocessor no audio: the preprocessor's
        # default compute_loudness=True fails there, so the config only runs with False.
        "F0LoudnessPreprocessor.compute_loudness = False",
        "DilatedConvDecoder.ch = 8",
        "DilatedConvDecoder.layers_per_stack = 2",
        "DilatedConvDecoder.stacks = 1",
        "DilatedConvDecoder.output_splits = (('amplitudes', 1), ('harmonic_distribution', 12), "
        "('magnitudes', 9))",
        "MidiToHarmonicDecoder.output_splits = (('f0_midi', 1), ('amplitudes', 1), "
        "('harmonic_distribution', 12), ('magnitudes', 9))",
        "dec/DilatedConvStack.ch = 8",
        "dec/DilatedConvStack.layers_per_stack = 2",
        "dec/DilatedConvStack.stacks = 1",
    ]),
    "ae": ("models/ae.gin", COMMON_BINDINGS + [
        "RnnFcDecoder.output_splits = (('amps', 1), ('harmonic_distribution', 12), "
        "('noise_magnitudes', 9))",
        "MfccTimeDistributedRnnEncoder.rnn_channels = 16",
        "MfccTimeDistributedRnnEncoder.z_dims = 4",
        "MfccTimeDistributedRnnEncoder.z_time_steps = 125",
    ]),
}


def tone(f0_hz, amplitude, n_harmonics=6, n_samples=N_SAMPLES):
    """Audio [n_samples] of a harmonic tone following frame-rate f0 [N_FRAMES] (Hz)."""
    t_frames = np.linspace(0.0, 1.0, N_FRAMES)
    t_samples = np.linspace(0.0, 1.0, n_samples)
    f0 = np.interp(t_samples, t_frames, f0_hz)
    amp = np.interp(t_samples, t_frames, amplitude)
    phase = 2.0 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    audio = sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1) if k * f0.max() < 8000)
    return (amp * audio * 0.3).astype(np.float32)


def example(seed, notes=False):
    """One feature dict: a gliding tone with a loudness swell and a quiet tail (with
    `notes`, also its note roll, as the MIDI models need, and 4 s of audio)."""
    rng = np.random.RandomState(seed)
    f0 = np.linspace(rng.uniform(150, 300), rng.uniform(200, 500), N_FRAMES)
    f0 = f0 * (1.0 + 0.01 * np.sin(np.linspace(0, 20, N_FRAMES)))
    amplitude = np.clip(np.sin(np.linspace(0, np.pi, N_FRAMES)) + 0.05, 0, 1)
    amplitude[-30:] = 0.0
    loudness = (20.0 * np.log10(amplitude + 1e-4) - 20.0 + rng.normal(0, 1, N_FRAMES))
    confidence = np.clip(amplitude * 1.2, 0, 1)
    n_samples = MIDI_N_SAMPLES if notes else N_SAMPLES
    features = {"audio": tone(f0, amplitude, n_samples=n_samples), "f0_hz": f0.astype(np.float32),
                "f0_confidence": confidence.astype(np.float32),
                "loudness_db": np.maximum(loudness, -100.0).astype(np.float32)}
    if not notes:
        return features
    # The notes: the nearest MIDI pitch of f0 while the tone sounds, velocity 30 - 110.
    pitch = np.round(12.0 * np.log2(f0 / 440.0) + 69.0).astype(int)
    active = amplitude > 0.2
    velocities = np.zeros([N_FRAMES, 128], np.float32)
    velocities[np.arange(N_FRAMES)[active], pitch[active]] = np.round(30 + 80 * amplitude[active])
    features.update(note_active_velocities=velocities,
                    note_active_frame_indices=(velocities > 0).astype(np.float32))
    return features


class InMemoryProvider(data.DataProvider):
    """The original's DataProvider over a list of feature dicts."""

    def __init__(self, examples):
        super().__init__(SAMPLE_RATE, N_FRAMES)
        self.examples = {k: np.stack([e[k] for e in examples]) for k in examples[0]}

    def get_dataset(self, shuffle=True):
        del shuffle  # fixed order: the recording is reproducible
        return tf.data.Dataset.from_tensor_slices(self.examples)


def statistics_examples():
    """The training examples with one more frame (centred frames), as the statistics see them."""
    centered = [example(i) for i in range(4)]
    for e in centered:
        for key in ("f0_hz", "f0_confidence", "loudness_db"):
            e[key] = np.append(e[key], e[key][-1])
    return centered


def save_statistics_examples(out_root):
    """``statistics_examples.npz``: the examples `dataset_statistics.pkl` was computed from."""
    examples = statistics_examples()
    np.savez_compressed(os.path.join(out_root, "statistics_examples.npz"),
                        **{k: np.stack([e[k] for e in examples]) for k in examples[0]})


def fixed_batch(notes=False):
    """The feature batch the golden outputs are recorded for (2 examples)."""
    examples = [example(100, notes), example(101, notes)]
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def record(name, gin_file, bindings, out_root, example_fn=None, golden_fn=None):
    """Trains and records one model folder. `example_fn(seed, notes)` (default `example`)
    makes the feature dicts; `golden_fn(model, batch)` (default: by model kind) the numbers
    of `golden.npz`."""
    example_fn = example_fn or example
    folder = os.path.join(out_root, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    gin.clear_config()
    gin_dir = os.path.join(os.path.dirname(ddsp.training.__file__), "gin")
    gin.add_config_file_search_path(gin_dir)
    gin.add_config_file_search_path(UPSTREAM_GIN)  # models/midiae/ of the repository
    path = os.path.join(gin_dir, gin_file)
    path = path if os.path.exists(path) else os.path.join(UPSTREAM_GIN, gin_file)
    gin.parse_config_files_and_bindings([path], bindings)
    tf.random.set_seed(0)
    np.random.seed(0)
    notes = name in MIDI_MODELS or golden_fn is not None
    provider = InMemoryProvider([example_fn(i, notes) for i in range(4)])
    model = models.get_model()
    trainer = trainers.Trainer(model, train_util.get_strategy())
    train_util.train(provider, trainer, batch_size=2, num_steps=3, steps_per_summary=1000,
                     steps_per_save=1000, save_dir=folder, restore_dir=folder)
    # Keep only what a model folder needs: the newest checkpoint and the operative config.
    shutil.rmtree(os.path.join(folder, "summaries"), ignore_errors=True)
    newest = os.path.basename(tf.train.latest_checkpoint(folder))
    for f in os.listdir(folder):
        if f.startswith("ckpt-") and not f.startswith(newest + "."):
            os.remove(os.path.join(folder, f))
    with open(os.path.join(folder, "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "{newest}"\nall_model_checkpoint_paths: "{newest}"\n')
    # dataset_statistics.pkl as the original's colab_utils.save_dataset_statistics writes it
    # Power is computed at the features' frame rate with 'center' padding (n_frames + 1
    # frames), as the original's data preparation does for f0 and loudness
    # (`prepare_tfrecord --center`): the original's note mask indexes both.
    stats = postprocessing.compute_dataset_statistics(InMemoryProvider(statistics_examples()),
                                                      batch_size=1, power_frame_rate=N_FRAMES)
    with open(os.path.join(folder, "dataset_statistics.pkl"), "wb") as f:
        pickle.dump(stats, f)

    batch = {k: np.stack([example_fn(seed, notes)[k] for seed in (100, 101)]) for k in example_fn(100, notes)}
    if golden_fn is not None:
        golden = golden_fn(model, batch)
    else:
        golden = midi_golden(model, batch) if notes else autoencoder_golden(model, batch, stats)
    np.savez_compressed(os.path.join(folder, "golden.npz"), **golden)
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"{name}: {sorted(os.listdir(folder))} {size / 1e3:.0f} kB")


def midi_golden(model, batch):
    """A MidiAutoencoder's numbers on `batch` (training=False; the reverb's noise and the
    filtered noise are random, so only deterministic outputs are kept): preprocessed
    features, the synthcoder's raw outputs, its harmonic controls and signal, the noise
    magnitudes, the ground-truth MIDI (q_pitch, q_vel), the midi_decoder's raw outputs
    (f0_midi, f0_hz, amplitudes, ...), its harmonic controls and signal, the log-scaled
    controls of both branches and the losses of a training call ('losses/<name>', with
    'losses/total_loss'). Signals keep every 4th sample (64000 samples each)."""
    features = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
    # Not the 4 s of audio (1 MB): with compute_loudness False only the losses read it.
    golden = {f"input/{k}": v for k, v in batch.items() if k != "audio"}
    preprocessed = model.preprocess(dict(features))
    for key in ("f0_scaled", "ld_scaled", "f0_midi"):
        golden[f"features/{key}"] = preprocessed[key].numpy()
    for key, value in model.synthcoder(preprocessed, training=False).items():
        golden[f"synthcoder/{key}"] = value.numpy()
    outputs = model(dict(features), training=False)
    for branch, params in (("synth", outputs["synth_params"]), ("midi", outputs["midi_synth_params"])):
        harmonic = params["harmonic"]
        golden[f"{branch}/harmonic/amplitudes"] = harmonic["controls"]["amplitudes"].numpy()
        golden[f"{branch}/harmonic/harmonic_distribution"] = harmonic["controls"]["harmonic_distribution"].numpy()
        golden[f"{branch}/harmonic/f0_hz"] = harmonic["controls"]["f0_hz"].numpy()
        golden[f"{branch}/harmonic/signal_every_4th"] = harmonic["signal"].numpy()[:, ::4]
        golden[f"{branch}/filtered_noise/magnitudes"] = params["filtered_noise"]["controls"]["magnitudes"].numpy()
    for key, value in model.midi_decoder(outputs["q_pitch"], outputs["q_vel"]).items():
        golden[f"midi_decoder/{key}"] = value.numpy()
    for key in ("q_pitch", "q_vel", "f0_midi_pred", "f0_hz_pred", "amps", "hd", "noise", "amps_pred", "hd_pred",
                "noise_pred", "f0_loss_weights"):
        golden[f"outputs/{key}"] = outputs[key].numpy()
    # The losses of a training call (the original adds them only with training=True). The
    # spectral losses hear the random filtered noise and reverb: only their sum with the
    # others ('total_loss') is kept for them, the parameter losses are exact.
    _, losses = model(dict(features), training=True, return_losses=True)
    for key, value in losses.items():
        golden[f"losses/{key}"] = np.float32(value.numpy())
    return golden


def autoencoder_golden(model, batch, stats):
    """An Autoencoder's numbers on `batch` (see the module doc)."""
    features = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
    encoded = model.encode(dict(features), training=False)
    decoded = model.decoder(encoded, training=False)
    outputs = model(dict(features), training=False)
    harmonic = outputs["harmonic"]
    golden = {f"input/{k}": v for k, v in batch.items()}
    for key in ("f0_scaled", "ld_scaled", "z"):
        if key in encoded:
            golden[f"features/{key}"] = encoded[key].numpy()
    for key, value in decoded.items():
        golden[f"decoder/{key}"] = value.numpy()
    golden["harmonic/amplitudes"] = harmonic["controls"]["amplitudes"].numpy()
    golden["harmonic/harmonic_distribution"] = harmonic["controls"]["harmonic_distribution"].numpy()
    golden["harmonic/signal"] = harmonic["signal"].numpy()
    noise_controls = outputs["filtered_noise"]["controls"]
    golden["filtered_noise/magnitudes"] = noise_controls["magnitudes"].numpy()
    reverb = [p for p in model.processor_group.processors if isinstance(p, ddsp.effects.Reverb)]
    if reverb:
        golden["reverb/ir"] = reverb[0].get_controls(harmonic["signal"])["ir"].numpy()
        golden["reverb/of_harmonic"] = reverb[0](harmonic["signal"]).numpy()
    if model.encoder is not None:  # the MFCCs the encoder's layers see
        golden["encoder/mfcc"] = ddsp.spectral_ops.compute_mfcc(
            features["audio"], lo_hz=20.0, hi_hz=8000.0, fft_size=model.encoder.fft_size,
            mel_bins=128, mfcc_bins=30, overlap=model.encoder.overlap, pad_end=True).numpy()
        encoder = model.encoder  # z at the MFCC frame rate, before it is resampled to frames
        normalized = encoder.z_norm(golden["encoder/mfcc"][:, :, np.newaxis, :])[:, :, 0, :]
        golden["encoder/z_at_mfcc_rate"] = encoder.dense_out(encoder.rnn(normalized)).numpy()
    levels = np.linspace(-28.0, -15.0, 14)[:, np.newaxis]
    golden["stats/loudness_levels"] = levels[:, 0]
    transformed = stats["quantile_transform"].transform(levels)
    golden["stats/quantile_transform_of_levels"] = transformed[:, 0]
    return golden


def main(argv):
    """argv: [OUT_DIR [NAME ...]]: all models, or only those NAMEs of `MODELS`."""
    out_root = argv[1] if len(argv) > 1 else DEFAULT_OUT
    for name in argv[2:] or list(MODELS):
        gin_file, bindings = MODELS[name]
        record(name, gin_file, bindings, out_root)
    save_statistics_examples(out_root)


if __name__ == "__main__":
    main(sys.argv)
