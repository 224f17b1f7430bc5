"""Test data for the pipeline flows: a tiny prepared dataset of harmonic tones with known
pitch (and note annotations), and tiny run params.

Every clip is 0.5 s at 16 kHz (125 frames at 250 Hz): one sustained harmonic note of a
known MIDI pitch with an attack/release envelope; its f0 track is the true f0 with
confidence 0.95, loudness and power are computed the way the features stage does, and the
note features mark the note on every frame. `tiny_overrides` and `tiny_folders` are the
params overrides and the stage folders of seconds-long flows on it.
"""
import json
import os

import numpy as np

SAMPLE_RATE = 16000
FRAME_RATE = 250
CLIP_SECONDS = 0.5
N_SAMPLES = int(SAMPLE_RATE * CLIP_SECONDS)
N_FRAMES = int(FRAME_RATE * CLIP_SECONDS)
PITCHES = {"train": [57, 60, 62, 64, 65, 67], "valid": [69], "test": [60, 64]}


def harmonic_tone(midi_pitch: float, n_harmonics: int = 6, amplitude: float = 0.4) -> np.ndarray:
    """A 0.5 s harmonic tone (1/k amplitudes) with 30 ms attack and 60 ms release."""
    f0 = 440.0 * 2 ** ((midi_pitch - 69) / 12)
    t = np.arange(N_SAMPLES) / SAMPLE_RATE
    audio = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, n_harmonics + 1))
    envelope = np.minimum(1.0, np.minimum(t / 0.03, (CLIP_SECONDS - t) / 0.06))
    return (amplitude * envelope * audio / np.abs(audio).max()).astype(np.float32)


def clip_features(midi_pitch: int, with_midi: bool = True, instrument_id: int = 40) -> dict:
    from ddsp_models import spectral_ops
    from ddsp_models.training.features import fit_frames, midi_frame_features

    audio = harmonic_tone(midi_pitch)
    f0 = 440.0 * 2 ** ((midi_pitch - 69) / 12)
    features = {
        "audio": audio,
        "f0_hz": np.full(N_FRAMES, f0, np.float32),
        "f0_confidence": np.full(N_FRAMES, 0.95, np.float32),
        "loudness_db": fit_frames(spectral_ops.compute_loudness(audio, SAMPLE_RATE, FRAME_RATE),
                                  N_FRAMES, "loudness_db"),
        "power_db": fit_frames(spectral_ops.compute_power(audio, SAMPLE_RATE, FRAME_RATE),
                               N_FRAMES, "power_db"),
        "instrument_id": np.int64(instrument_id),
    }
    if with_midi:
        features.update(midi_frame_features(
            [{"pitch": midi_pitch, "velocity": 100, "start": 0.0, "end": CLIP_SECONDS}],
            N_FRAMES, FRAME_RATE))
    return features


def write_tone_dataset(root, with_midi: bool = True) -> str:
    """Feature files of `PITCHES` under ``root/features`` built into ``root/tfds``;
    returns the tfds folder."""
    from pipelines.dataset import build_dataset

    features_dir = os.path.join(str(root), "features")
    for split, pitches in PITCHES.items():
        os.makedirs(os.path.join(features_dir, split), exist_ok=True)
        for pitch in pitches:
            clip_id = f"{split}_tone{pitch}"
            example = clip_features(pitch, with_midi)
            np.savez_compressed(os.path.join(features_dir, split, f"{clip_id}.npz"),
                                id=np.array(clip_id), **example)
    with open(os.path.join(features_dir, "meta.json"), "w") as f:
        json.dump({"sample_rate": SAMPLE_RATE, "frame_rate": FRAME_RATE,
                   "clip_seconds": CLIP_SECONDS, "crepe_capacity": "tiny",
                   "crepe_viterbi": True}, f)
    tfds_dir = os.path.join(str(root), "tfds")
    build_dataset(features_dir, tfds_dir)
    return tfds_dir


def tiny_folders(root, data_dir: str):
    """The stages' folders under `root` (``runs``, ``plots``, ``metrics``, ``samples``,
    ``transfers``, ``exported``) with the dataset in `data_dir`."""
    from ddsp_models.training.run_config import Folders

    root = str(root)
    return Folders(data_dir=str(data_dir), runs_dir=os.path.join(root, "runs"),
                   plots_dir=os.path.join(root, "plots"),
                   metrics_dir=os.path.join(root, "metrics"),
                   samples_dir=os.path.join(root, "samples"),
                   transfers_dir=os.path.join(root, "transfers"),
                   exported_dir=os.path.join(root, "exported"))


def tiny_overrides(runs=("ae", "midiae")) -> dict:
    """Params overrides for seconds-long flows: tiny nets, a few steps, chunks of 3."""
    net = {"rnn_channels": 8, "mlp_units": 8, "mlp_layers": 1}
    return {
        "train": {
            "batch_size": 2, "chunk_steps": 3, "steps_per_summary": 1, "retries": 1,
            "learning_rate": 0.003,
            "ae": {"steps": 6, "rnn_channels": 16, "mlp_units": 16, "mlp_layers": 1,
                   "n_harmonics": 8, "noise_bands": 8, "reverb_seconds": 0.05},
            "midiae": {"steps": 3, **net},
            "zmidiae": {"steps": 3, "z_dims": 4, **net},
        },
        "evaluate": {"runs": list(runs), "batch_size": 2},
        "sample": {"runs": list(runs), "n_clips": 1, "transfer_seed": 1},
    }
