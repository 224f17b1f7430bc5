"""Tiny run folders for the inference / export tests: an untrained model saved the way a
training run saves it (operative config + ``ckpt-0``), plus dataset statistics.

An untrained Autoencoder still places its harmonics at the f0 it is given (the harmonic
synthesizer takes f0 straight from the input), and a MIDI decoder with a tiny
``f0_residual_range`` puts f0 within that range of the note, so f0-following checks hold
without training. Not a test module.
"""
import os

import keras
import numpy as np
import tensorflow as tf

SECONDS = 1.0  # training clip: 250 frames, 16000 samples


def write_run(folder, model, n_frames: int = 250, n_samples: int = 16000, statistics=None) -> str:
    """Builds `model` on a zero batch and writes it as a run folder."""
    from ddsp_models.training import run_folders
    from ddsp_models.training.config import write_operative_config

    model(run_folders.example_features(n_frames, n_samples), training=False)
    os.makedirs(folder, exist_ok=True)
    write_operative_config(folder, 0)
    tf.train.Checkpoint(model=model).write(os.path.join(folder, "ckpt-0"))
    if statistics is not None:
        run_folders.write_statistics(folder, statistics)
    return os.fspath(folder)


def tone_statistics(mean_pitch: float = 60.0) -> dict:
    """Dataset statistics of a made-up training set (what `transfer` and export read)."""
    from ddsp_models.training.evaluation import compute_dataset_statistics

    rng = np.random.default_rng(0)
    n = 250
    pitch = mean_pitch + rng.uniform(-5, 5, size=[8, 1]) + np.zeros([8, n])
    f0 = 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)
    loudness = rng.uniform(-40, -20, size=[8, n])
    return compute_dataset_statistics([{"f0_hz": f0, "f0_confidence": np.ones([8, n]),
                                        "loudness_db": loudness, "power_db": loudness + 3.0}])


def make_ae_run(folder, width: int = 16, seed: int = 0, statistics=None) -> str:
    """A solo_instrument Autoencoder (1 s clips, GRU of `width` units) as a run folder."""
    from model_fixtures import make_model, shrink_bindings

    keras.utils.set_random_seed(seed)
    model = make_model("models/solo_instrument.gin", shrink_bindings(seconds=SECONDS, width=width))
    return write_run(folder, model, statistics=statistics)


def make_midi_run(folder, config: str = "models/midiae/midiae.gin", seed: int = 0,
                  f0_residual_range: float = 0.05) -> str:
    """A MidiAutoencoder (or ZMidiAutoencoder) run folder with f0 held within
    `f0_residual_range` semitones of the note."""
    from midi_fixtures import make_midi_model, midi_shrink_bindings

    keras.utils.set_random_seed(seed)
    model = make_midi_model([config], midi_shrink_bindings(seconds=SECONDS) + [
        f"MidiToHarmonicDecoder.f0_residual_range = {f0_residual_range}"])
    return write_run(folder, model)


def tone(f0_hz: float, seconds: float, sample_rate: int = 16000, amplitude: float = 0.3):
    """A steady harmonic tone (3 partials), float32 `[n]`."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    audio = sum(amplitude / k * np.sin(2 * np.pi * k * f0_hz * t) for k in (1, 2, 3))
    return audio.astype(np.float32)
