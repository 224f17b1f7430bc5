"""Helpers shared by the model / trainer tests: synthetic notes and shrunk gin configs.

Not a test module: test files import it (``from model_fixtures import ...``).
"""
import gin
import numpy as np

FRAME_RATE = 250


def harmonic_notes(n_examples: int = 4, seconds: float = 1.0, sample_rate: int = 16000,
                   seed: int = 0, n_harmonics: int = 8) -> dict:
    """Synthetic harmonic notes with their features (numpy, batch first).

    Each example: one note of random pitch (110-440 Hz) whose partial k has amplitude
    ``0.4 / k``, under an attack-decay envelope. ``f0_hz`` is the true pitch per frame,
    ``f0_confidence`` 1, ``loudness_db`` the A-weighted loudness of the audio.

    Returns:
      ``{'audio': [n, seconds * sample_rate], 'f0_hz', 'f0_confidence', 'loudness_db':
      [n, seconds * 250]}`` float32.
    """
    from ddsp_models import spectral_ops

    rng = np.random.default_rng(seed)
    n_samples = int(round(seconds * sample_rate))
    n_frames = int(round(seconds * FRAME_RATE))
    t = np.arange(n_samples) / sample_rate
    audio = np.zeros([n_examples, n_samples], np.float64)
    f0 = rng.uniform(110.0, 440.0, size=n_examples)
    for i in range(n_examples):
        envelope = np.minimum(t / 0.05, 1.0) * np.exp(-t * rng.uniform(0.5, 2.0))
        for k in range(1, n_harmonics + 1):
            if k * f0[i] < sample_rate / 2:
                audio[i] += 0.4 / k * np.sin(2 * np.pi * k * f0[i] * t + rng.uniform(0, 6.28))
        audio[i] *= envelope
    audio = audio.astype(np.float32)
    loudness = spectral_ops.compute_loudness(audio, sample_rate=sample_rate,
                                             frame_rate=FRAME_RATE, use_tf=False)
    loudness = np.asarray(loudness, np.float32)[:, :n_frames]
    return {
        "audio": audio,
        "f0_hz": np.repeat(f0[:, None], n_frames, axis=1).astype(np.float32),
        "f0_confidence": np.ones([n_examples, n_frames], np.float32),
        "loudness_db": loudness,
    }


def shrink_bindings(seconds: float = 1.0, sample_rate: int = 16000, width: int = 16,
                    reverb_seconds: float = 0.125) -> list[str]:
    """gin bindings that shrink models/ae.gin-style configs: short clips, narrow layers."""
    n_samples = int(round(seconds * sample_rate))
    time_steps = int(round(seconds * FRAME_RATE))
    return [
        f"F0LoudnessPreprocessor.time_steps = {time_steps}",
        f"Harmonic.n_samples = {n_samples}",
        f"Harmonic.sample_rate = {sample_rate}",
        f"FilteredNoise.n_samples = {n_samples}",
        f"Reverb.reverb_length = {int(round(reverb_seconds * sample_rate))}",
        f"RnnFcDecoder.rnn_channels = {width}",
        f"RnnFcDecoder.ch = {width}",
        "RnnFcDecoder.layers_per_stack = 1",
        f"MfccTimeDistributedRnnEncoder.rnn_channels = {width}",
        "MfccTimeDistributedRnnEncoder.z_dims = 4",
        f"MfccTimeDistributedRnnEncoder.z_time_steps = {max(1, time_steps // 8)}",
        "SpectralLoss.fft_sizes = (1024, 256, 64)",
    ]


def make_model(gin_file: str, bindings=(), skip_unknown: bool = False):
    """A fresh model from a config file (gin cleared first) plus bindings."""
    from ddsp_models.training import models
    from ddsp_models.training.config import parse_gin

    gin.clear_config()
    parse_gin([gin_file], list(bindings), skip_unknown=skip_unknown)
    return models.get_model()


# solo_instrument without the filtered-noise branch: a deterministic model, for tests that
# compare two training runs step by step (the noise synth draws fresh noise on every call).
NO_NOISE_DAG = ("ProcessorGroup.dag = ["
                "(@synths.Harmonic(), ['amps', 'harmonic_distribution', 'f0_hz']), "
                "(@effects.Reverb(), ['harmonic/signal'])]")


def same_noise_for_every_example(shape, minval: float = 0.0, maxval: float = 1.0):
    """A stand-in for `ddsp_models.seeding.uniform` (``monkeypatch.setattr(seeding, 'uniform',
    same_noise_for_every_example)``): one fixed uniform row `[1, shape[1]]` tiled over the
    batch, so every call, in any batch, in any process or thread, draws the same noise for
    an example. Tests then compare noisy outputs exactly."""
    import tensorflow as tf

    row = tf.random.stateless_uniform([1, shape[1]], seed=[3, 4], minval=minval, maxval=maxval)
    return tf.tile(row, tf.stack([shape[0], 1]))
