"""Shared test data for the InverseSynthesis tests: tiny models, notes and datasets.

Not a test module: test files import it (``from inverse_fixtures import ...``).
"""
import json
import os

import numpy as np

SAMPLE_RATE = 16000
SECONDS = 0.5
N_SAMPLES = int(SECONDS * SAMPLE_RATE)  # 8000
FRAME_RATE = 100  # 50 frames of 160 samples
N_HARMONICS = 10
N_NOISE_BANDS = 17


def tiny_encoders(n_sinusoids: int = 8, frame_rate: int = FRAME_RATE):
    """(ResnetSinusoidalEncoder, SinusoidalToHarmonicEncoder) at test size."""
    from ddsp_models.training import encoders

    sinusoidal = encoders.ResnetSinusoidalEncoder(
        size="tiny", scale_outputs=True, n_sinusoids=n_sinusoids, n_freq_bins=32, n_noise_bands=N_NOISE_BANDS,
        frame_rate=frame_rate, fft_size=512, overlap=0.75, mel_bins=32)
    harmonic = encoders.SinusoidalToHarmonicEncoder(n_harmonics=N_HARMONICS, rnn_channels=32, ch=32,
                                                    layers_per_stack=1, f0_midi_range=(24.0, 96.0),
                                                    scale_inputs=True)
    return sinusoidal, harmonic


def package_losses() -> dict:
    """This package's grouped losses (keyword arguments of InverseSynthesis), as
    models/inverse_synthesis.gin binds them, with spectral losses at 3 scales."""
    from ddsp_models import inverse_losses, losses

    return {"audio_losses": [losses.SpectralLoss(fft_sizes=(1024, 256, 64), logmag_weight=1.0)],
            "consistency_losses": [inverse_losses.InverseKDEConsistencyLoss()],
            "prior_losses": [inverse_losses.HarmonicDistributionPrior(weight=0.1)],
            "twm_losses": [inverse_losses.InverseTWMLoss(weight=0.1)],
            "sinusoid_supervision_losses": [inverse_losses.InverseKDEConsistencyLoss()],
            "noise_supervision_losses": [inverse_losses.InverseFilteredNoiseConsistencyLoss()],
            "harmonic_supervision_losses": [inverse_losses.InverseHarmonicConsistencyLoss()]}


def tiny_model(harmonic: bool = True, stop_gradient: bool = True, **kwargs):
    """A tiny InverseSynthesis on 0.5 s clips without reverb, with `package_losses()` (each
    replaced by a keyword of the same name)."""
    from ddsp_models.training import models

    sinusoidal_encoder, harmonic_encoder = tiny_encoders(frame_rate=kwargs.pop("frame_rate", FRAME_RATE))
    kwargs = {**package_losses(), "reverb": False, **kwargs}
    return models.InverseSynthesis(sinusoidal_encoder=sinusoidal_encoder,
                                   harmonic_encoder=harmonic_encoder if harmonic else None,
                                   n_samples=N_SAMPLES, stop_gradient=stop_gradient, **kwargs)


def synthetic_notes(batch_size: int = 2, seed: int = 0, frame_rate: int = FRAME_RATE) -> dict:
    """generate_synthetic_notes at test size: 0.5 s, 10 harmonics, 17 noise bands."""
    from ddsp_models.training.synthetic_notes import generate_synthetic_notes

    return generate_synthetic_notes(batch_size=batch_size, n_seconds=SECONDS, sample_rate=SAMPLE_RATE,
                                    frame_rate=frame_rate, n_harmonics=N_HARMONICS,
                                    n_noise_bands=N_NOISE_BANDS, seed=seed)


def f0_error_semitones(f0_hz, true_f0_hz) -> float:
    """Mean |12 log2(f0 / true f0)| over batch and frames, semitones."""
    f0_hz, true_f0_hz = np.asarray(f0_hz).reshape(-1), np.asarray(true_f0_hz).reshape(-1)
    return float(np.mean(np.abs(12.0 * np.log2(f0_hz / true_f0_hz))))


def write_prepared_tfds(root, n_examples: int = 2, seconds: float = SECONDS) -> str:
    """A tiny `ddsp_prepared/audio` TFDS dataset (the `dataset` stage's builder) of noise
    clips; returns its data_dir."""
    from ddsp_models.training.features import FRAME_FEATURES
    from pipelines import dataset as dataset_stage

    rng = np.random.default_rng(0)
    features_dir = os.path.join(root, "features")
    n_samples, n_frames = int(seconds * SAMPLE_RATE), int(seconds * 250)
    for split in ("train", "valid", "test"):
        os.makedirs(os.path.join(features_dir, split), exist_ok=True)
        for i in range(n_examples):
            example = {"audio": rng.uniform(-0.1, 0.1, n_samples).astype(np.float32),
                       "instrument_id": np.int64(0), "id": np.array(f"{split}_{i}")}
            for key in FRAME_FEATURES:
                example[key] = rng.uniform(0, 1, n_frames).astype(np.float32)
            np.savez_compressed(os.path.join(features_dir, split, f"{split}_{i}.npz"), **example)
    with open(os.path.join(features_dir, "meta.json"), "w") as f:
        json.dump({"sample_rate": SAMPLE_RATE, "frame_rate": 250, "clip_seconds": seconds,
                   "crepe_capacity": "tiny", "crepe_viterbi": True}, f)
    out = os.path.join(root, "tfds")
    dataset_stage.build_dataset(features_dir, out)
    return out
