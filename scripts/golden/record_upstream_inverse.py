"""Records an original DDSP 3.7.0 InverseSynthesis model folder and its numbers, for
tests/test_compat_inverse.py.

Run with the original's own environment (TF 2.15 / Keras 2), never the project's:

    /work/upstream-venv/bin/python scripts/golden/record_upstream_inverse.py [OUT_DIR]

The model is the original's ``papers/icml2020/finetune_model.gin`` (which includes
``pretrain_model.gin``: ResnetSinusoidalEncoder 'small' on the 229-bin log-mel,
SinusoidalToHarmonicEncoder with an RnnSandwich, SpectralLoss, KDE / harmonic / filtered-noise
consistency losses, no reverb), shrunk where gin allows (`SHRINK`: 8192-sample clips, 16
sinusoids and harmonics, 17 noise bands, a 32-unit RnnSandwich). The ResNet's size is
fixed in the original (5.3 M values whatever the input), so no training: every variable gets
a seeded periodic pattern (`pattern_value`) that compresses well. The folder is written as
the original's trainer writes it: `train_util.write_gin_config` (``operative_config-<step>.gin``)
and `trainers.Trainer.save` (``tf.train.Checkpoint(model=..., optimizer=...)`` through a
CheckpointManager: ``ckpt-<step>.index``, ``ckpt-<step>.data-00000-of-00001``,
``checkpoint``), at step `STEP`. The data file is then xz-compressed (``.xz``; the test
decompresses it) so that the folder stays far below 1 MB.

``golden.npz`` holds, for two batches called as a training step calls the model
(``model(batch, return_losses=True, training=True)``):

* ``real/``: fixed audio (two harmonic tones with a little noise);
* ``ss/``: a self-supervised batch of the original's
  `synthetic_data.generate_notes_v2` controls (seeded; its noise magnitudes zeroed, so the
  audio the model renders from the controls, its Sinusoidal synth plus silent filtered
  noise, is deterministic),

the encoder's controls (sin_amps, sin_freqs, noise_magnitudes), the harmonic encoder's
outputs (harm_amp, harm_dist, f0_hz) and their sinusoids (harm_amps, harm_freqs), the
deterministic signals (the Sinusoidal synth's signal of the sinusoidal controls and of the
harmonic ones; the filtered noise is random) and the deterministic losses (every loss but
the spectral ones, which hear the random noise). ``input/`` holds the batches.
"""
import json
import lzma
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import ddsp  # noqa: E402
import ddsp.training  # noqa: E402
import gin  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ddsp.training import models, train_util, trainers  # noqa: E402


def _load_synthetic_data():
    """The original's data_preparation/synthetic_data.py (its package's __init__ needs
    apache_beam, which the original's environment lacks)."""
    import importlib.util

    path = os.path.join(os.path.dirname(ddsp.training.__file__), "data_preparation", "synthetic_data.py")
    spec = importlib.util.spec_from_file_location("ddsp_synthetic_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


synthetic_data = _load_synthetic_data()

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "tests", "data", "golden", "upstream_models", "inverse_synthesis")
SEED = 20261202
PERIOD = 251
STEP = 1200
SAMPLE_RATE, N_SAMPLES = 16000, 8192
N_FRAMES = 16  # the log-mel frames of N_SAMPLES (hop 512, pad_end)
N_SINUSOIDS, N_HARMONICS, N_NOISE = 16, 16, 17
GIN_FILE = "papers/icml2020/finetune_model.gin"
SHRINK = [
    f"InverseSynthesis.n_samples = {N_SAMPLES}",
    f"ResnetSinusoidalEncoder.output_splits = (('frequencies', {N_SINUSOIDS * 64}), "
    f"('amplitudes', {N_SINUSOIDS}), ('noise_magnitudes', {N_NOISE}))",
    f"SinusoidalToHarmonicEncoder.n_harmonics = {N_HARMONICS}",
    "RnnSandwich.fc_stack_ch = 32",
    "RnnSandwich.rnn_ch = 32",
]
# Deterministic losses (the spectral ones hear the random filtered noise).
RANDOM_LOSSES = ("sin_spectral_loss", "harm_spectral_loss", "total_loss")


def audio_batch(rng):
    """[2, N_SAMPLES]: two harmonic tones (220 Hz, 587 Hz) with a little noise."""
    t = np.arange(N_SAMPLES) / SAMPLE_RATE
    tones = [sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6)) for f0 in (220.0, 587.0)]
    return (np.stack(tones) + 0.01 * rng.normal(size=(2, N_SAMPLES))).astype(np.float32)


def synthetic_batch(seed):
    """The original's synthetic notes (2 examples, N_FRAMES frames; notes of 3 - 8 frames,
    so that a clip holds several; none silent: log-mel frames of near-silence magnify
    float32 round-off), noise zeroed."""
    np.random.seed(seed)
    controls = synthetic_data.generate_notes_v2(n_batch=2, n_timesteps=N_FRAMES, n_harmonics=N_HARMONICS,
                                                n_mags=N_NOISE, min_note_length=3, max_note_length=8,
                                                p_silent=0.0)
    batch = {k: np.asarray(v, np.float32) for k, v in controls.items()}
    batch["noise_magnitudes"] = np.zeros_like(batch["noise_magnitudes"])
    return batch


def pattern_value(rng, base, variable):
    """A seeded periodic value for `variable`: one period of `base` (random normal, PERIOD
    values) from a random phase, scaled 1 / sqrt(fan-in) for kernels, 1 + 0.1 pattern for
    norm scales (scale, gamma), 0.1 pattern for biases and shifts (bias, shift, beta)."""
    shape = tuple(variable.shape)
    n = int(np.prod(shape))
    pattern = base[(np.arange(n) + rng.integers(PERIOD)) % PERIOD].reshape(shape)
    name = variable.name.split("/")[-1].split(":")[0]
    if name in ("scale", "gamma"):
        return (1.0 + 0.1 * pattern).astype(np.float32)
    if name in ("shift", "bias", "beta"):
        return (0.1 * pattern).astype(np.float32)
    return (pattern / np.sqrt(max(1, int(np.prod(shape[:-1]))))).astype(np.float32)


def outputs_golden(prefix, model, outputs, losses):
    """{prefix/key: array} of the deterministic numbers of one call."""
    golden = {}
    for key in ("sin_amps", "sin_freqs", "noise_magnitudes", "harm_amp", "harm_dist", "f0_hz", "harm_amps",
                "harm_freqs"):
        golden[f"{prefix}/{key}"] = outputs[key].numpy()
    golden[f"{prefix}/sinusoidal_signal"] = outputs["sinusoidal"]["signal"].numpy()
    # The harmonic pass's Sinusoidal signal (the model only returns it with random noise added).
    golden[f"{prefix}/harmonic_signal"] = model.sinusoidal_synth(outputs["harm_amps"],
                                                                 outputs["harm_freqs"]).numpy()
    for key, value in losses.items():
        if key not in RANDOM_LOSSES:
            golden[f"{prefix}/losses/{key}"] = np.float32(value.numpy())
    return golden


def record(folder):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    rng = np.random.default_rng(SEED)
    base = rng.normal(size=PERIOD)
    gin.clear_config()
    gin_dir = os.path.join(os.path.dirname(ddsp.training.__file__), "gin")
    gin.add_config_file_search_path(gin_dir)
    gin.parse_config_files_and_bindings([os.path.join(gin_dir, GIN_FILE)], SHRINK)
    tf.random.set_seed(0)
    model = models.get_model()
    trainer = trainers.Trainer(model, train_util.get_strategy())
    real = {"audio": audio_batch(rng)}
    trainer.build({k: tf.constant(v) for k, v in real.items()})
    for variable in model.weights:
        variable.assign(pattern_value(rng, base, variable))
    trainer.optimizer.iterations.assign(STEP)

    # The folder, as the original's train_util.train and Trainer.save write it.
    train_util.write_gin_config(tf.summary.create_noop_writer(), folder, STEP)
    trainer.save(folder)
    data = os.path.join(folder, f"ckpt-{STEP}.data-00000-of-00001")
    with open(data, "rb") as src, lzma.open(data + ".xz", "wb", preset=9) as dst:
        dst.write(src.read())
    os.remove(data)

    # After the config is written: generate_notes_v2 is gin-configurable (a real run reads
    # its synthetic notes from TFRecords, so its operative config does not list it).
    synthetic = synthetic_batch(SEED % 1000)
    golden = {"input/real/audio": real["audio"]}
    golden.update({f"input/ss/{k}": v for k, v in synthetic.items()})
    for prefix, batch in (("real", real), ("ss", synthetic)):
        outputs, losses = model({k: tf.constant(v) for k, v in batch.items()}, return_losses=True, training=True)
        golden.update(outputs_golden(prefix, model, outputs, losses))
        if prefix == "ss":  # the audio the model rendered from the controls
            golden["ss/audio"] = outputs["audio"].numpy()
        print(prefix, sorted(losses))
    np.savez_compressed(os.path.join(folder, "golden.npz"), **golden)
    header = {"ddsp_version": ddsp.__version__, "tensorflow_version": tf.__version__,
              "recorded_by": "scripts/golden/record_upstream_inverse.py", "seed": SEED, "gin_file": GIN_FILE,
              "bindings": SHRINK, "step": STEP, "sample_rate": SAMPLE_RATE, "n_samples": N_SAMPLES,
              "n_frames": N_FRAMES, "n_variables": len(model.weights),
              "n_values": int(sum(np.prod(v.shape) for v in model.weights))}
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(header, f, indent=1)
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"{folder}: {sorted(os.listdir(folder))} {size / 1e3:.0f} kB")


if __name__ == "__main__":
    record(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT)
