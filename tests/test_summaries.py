"""TensorBoard summaries (ddsp_models/training/summaries.py), read back from the event files:
tags, types, audio sample rate, length and samples, image sizes and colours, config text."""
import glob
import io
import os

import keras
import matplotlib.image as mpimg
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from ddsp_models.training import data
from ddsp_models.training.summaries import ValidationSummaries, png_size
from ddsp_models.training.train_loop import train
from ddsp_models.training.trainer import Trainer
from model_fixtures import harmonic_notes, make_model, shrink_bindings

SECONDS = 0.256  # 64 frames at 250 Hz, 4096 samples at 16 kHz
N_SAMPLES = 4096


def read_events(log_dir) -> dict:
    """{(step, tag): summary value} of every event file under `log_dir`."""
    values = {}
    for path in sorted(glob.glob(os.path.join(str(log_dir), "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values[(event.step, value.tag)] = value
    return values


def decode_png(png: bytes) -> np.ndarray:
    return mpimg.imread(io.BytesIO(png), format="png")


def test_training_writes_audio_spectrograms_f0_and_config_every_steps_per_eval(tmp_path):
    notes = harmonic_notes(n_examples=3, seconds=SECONDS, seed=4)
    keras.utils.set_random_seed(0)
    model = make_model("models/solo_instrument.gin", shrink_bindings(seconds=SECONDS, width=8))
    trainer = Trainer(model, learning_rate=1e-3)
    train_provider = data.InMemoryProvider(notes, seed=0)
    valid = {k: v[1:] for k, v in notes.items()}  # examples 1 and 2, in order
    result = train(train_provider, trainer, batch_size=2, num_steps=3, steps_per_summary=1,
                   steps_per_save=10, save_dir=str(tmp_path), restore_dir="",
                   steps_per_eval=2, eval_data_provider=data.InMemoryProvider(valid),
                   eval_examples=2)
    assert result["step"] == 3
    events = read_events(tmp_path / "summaries" / "valid")
    # Every steps_per_eval steps, and at the last step.
    assert sorted({step for step, _ in events}) == [2, 3]
    expected = {f"{kind}/{n}" for kind in ("spectrogram", "f0") for n in (1, 2)}
    expected |= {f"audio/{n}_{name}" for n in (1, 2) for name in ("original", "resynthesis")}
    assert expected <= {tag for step, tag in events if step == 3}
    assert not any(tag.startswith(("pianoroll/", "sinusoids/")) for _, tag in events)

    for n in (1, 2):
        original = events[(3, f"audio/{n}_original")].audio
        assert original.sample_rate == 16000 and original.num_channels == 1
        assert original.length_frames == N_SAMPLES and original.content_type == "audio/wav"
        wav, rate = sf.read(io.BytesIO(original.encoded_audio_string), dtype="float32")
        assert rate == 16000 and wav.shape == (N_SAMPLES,)
        # The fixed validation examples, in order (16-bit quantisation only).
        np.testing.assert_allclose(wav, notes["audio"][n], atol=1.0 / 32768 + 1e-6)
        resynth = events[(3, f"audio/{n}_resynthesis")].audio
        gen, _ = sf.read(io.BytesIO(resynth.encoded_audio_string), dtype="float32")
        assert gen.shape == (N_SAMPLES,) and np.sqrt(np.mean(gen ** 2)) > 1e-4
        assert not np.allclose(gen, wav, atol=1e-3)
        # Images: the plotting figures' sizes (8 x 2.5 in per spectrogram panel, 8 x 3 f0).
        spectrogram = events[(3, f"spectrogram/{n}")].image
        assert (spectrogram.width, spectrogram.height) == (800, 500)
        pixels = decode_png(spectrogram.encoded_image_string)
        assert pixels.shape[:2] == (500, 800) and np.std(pixels[..., :3]) > 0.05
        f0 = events[(3, f"f0/{n}")].image
        assert (f0.width, f0.height) == png_size(f0.encoded_image_string) == (800, 300)
    # The operative config as text, once per training call.
    config_tags = [(s, t) for s, t in events if t == "config/operative_config"]
    assert config_tags == [(2, "config/operative_config")]
    value = events[config_tags[0]]
    assert value.metadata.plugin_data.plugin_name == "text"
    text = tf.make_ndarray(value.tensor).item().decode()
    assert "    RnnFcDecoder.rnn_channels = 8" in text


class _EchoModel:
    """A test double whose 'resynthesis' is a given audio batch."""

    def __init__(self, audio):
        self.audio = audio

    def __call__(self, features, training=False):
        return {"audio_synth": tf.constant(self.audio)}

    @staticmethod
    def get_audio_from_outputs(outputs):
        return outputs["audio_synth"]


def test_f0_curves_follow_the_resynthesis_pitch_through_crepe(tmp_path):
    """CREPE on a resynthesis an octave up reads 12 semitones above the target f0."""
    seconds = 1.0
    notes = harmonic_notes(n_examples=1, seconds=seconds, seed=2)
    f0 = float(notes["f0_hz"][0, 0])
    t = np.arange(16000) / 16000.0
    octave_up = (0.4 * np.sin(2 * np.pi * 2 * f0 * t)).astype(np.float32)[None]
    summaries = ValidationSummaries(notes, tmp_path, sample_rate=16000, crepe_capacity="tiny")
    crepe_f0 = summaries._crepe_f0(octave_up)
    curves = summaries._f0_curves(0, {"audio_synth": octave_up}, crepe_f0)
    assert list(curves) == ["target (dataset)", "resynthesis (CREPE)"]
    target, resynth = (12 * np.log2(curves[k] / 440.0) + 69 for k in curves)
    middle = slice(50, 200)  # away from the edges
    assert np.nanmedian(resynth[middle] - target[middle]) == pytest.approx(12.0, abs=0.3)
    tags = summaries.write(_EchoModel(octave_up), step=7, config_text="")
    assert tags == ["audio/1_original", "audio/1_resynthesis", "spectrogram/1", "f0/1"]


def test_midi_model_pianoroll_shows_ground_truth_and_prediction(tmp_path):
    from midi_fixtures import make_midi_model, midi_notes, midi_shrink_bindings

    keras.utils.set_random_seed(0)
    model = make_midi_model(["models/midiae/midiae.gin"], midi_shrink_bindings(SECONDS))
    notes = midi_notes(n_examples=1, seconds=SECONDS, seed=1)
    tags = ValidationSummaries(notes, tmp_path, crepe_capacity=None).write(model, step=1)
    assert {"pianoroll/1", "audio/1_synthcoder", "f0/1"} <= set(tags)
    events = read_events(tmp_path)
    roll = decode_png(events[(1, "pianoroll/1")].image.encoded_image_string)[..., :3]
    left = roll[:, :roll.shape[1] // 2]  # the legend sits in the upper right
    # Without a MIDI encoder the model plays the annotated notes: every note cell is
    # "both" (cyan), none is ground truth only (green) or prediction only (blue).
    cyan = np.all(np.abs(left - (0.0, 0.8, 0.8)) < 0.02, axis=-1).sum()
    green = np.all(np.abs(left - (0.0, 0.65, 0.0)) < 0.02, axis=-1).sum()
    blue = np.all(np.abs(left - (0.0, 0.0, 1.0)) < 0.02, axis=-1).sum()
    assert cyan > 500 and green == 0 and blue == 0, (cyan, green, blue)
    synth = events[(1, "audio/1_synthcoder")].audio
    assert synth.sample_rate == 16000 and synth.length_frames == N_SAMPLES


def test_inverse_synthesis_gets_sinusoids_vs_harmonics(tmp_path):
    from inverse_fixtures import N_SAMPLES as INV_SAMPLES
    from inverse_fixtures import synthetic_notes, tiny_model

    keras.utils.set_random_seed(0)
    model = tiny_model()
    batch = {k: v for k, v in synthetic_notes(batch_size=1).items()}
    summaries = ValidationSummaries({"audio": batch["audio"], "f0_hz": batch["f0_hz"]},
                                    tmp_path, crepe_capacity=None)
    tags = summaries.write(model, step=5, config_text="")
    assert {"sinusoids/1", "audio/1_sinusoids", "audio/1_resynthesis", "f0/1"} <= set(tags)
    events = read_events(tmp_path)
    image = events[(5, "sinusoids/1")].image
    assert (image.width, image.height) == (800, 500)
    assert events[(5, "audio/1_sinusoids")].audio.length_frames == INV_SAMPLES
    curves = summaries._f0_curves(0, model({"audio": batch["audio"]}), None)
    assert list(curves) == ["target (dataset)", "harmonic encoder f0"]
    assert curves["harmonic encoder f0"].shape == curves["target (dataset)"].shape


def test_a_batch_without_audio_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ValueError, match="'audio'"):
        ValidationSummaries({"f0_hz": np.zeros([1, 10])}, tmp_path)
