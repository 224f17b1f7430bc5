"""Records the original DDSP 3.7.0's `encoders.ResnetSinusoidalEncoder` (raw outputs) and
the scaling its `models.InverseSynthesis` applies to them, for tests/test_golden_encoders.py.

Run with the original's own environment (TF 2.15 / Keras 2), never the project's:

    /work/upstream-venv/bin/python scripts/golden/record_upstream_encoders.py [OUT_DIR]

For each case it builds the original's encoder (its `nn.ResNet('small')`: 5.3 M variables
whatever the input size), gives every variable a seeded periodic pattern (one random
period of 251 values, a random phase per variable, scaled by 1 / sqrt(fan-in) for kernels,
1 + 0.1 pattern for norm scales and 0.1 pattern for biases and shifts) so that the 21 MB
checkpoint compresses to a few kB, writes it as the original's trainer would
(``tf.train.Checkpoint(model=encoder)``; ``<case>.index`` plus the xz-compressed
``<case>.data-00000-of-00001.xz``), then calls it on fixed audio and stores in
``arrays.npz``: the audio, the encoder's raw outputs and the original InverseSynthesis'
forward pass with this encoder (no harmonic encoder, no reverb): sin_freqs =
frequencies_softmax(frequencies, depth=64), sin_amps and noise_magnitudes = exp_sigmoid(.),
and the Sinusoidal synth's signal (sin_audio less its random filtered noise).
"""
import functools
import json
import lzma
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import ddsp  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ddsp import spectral_ops  # noqa: E402
from ddsp.training import encoders, models  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "tests", "data", "golden", "upstream_encoders")
SEED = 20261201
SAMPLE_RATE, N_SAMPLES = 16000, 4096
PERIOD = 251
SPLITS = [["frequencies", 2 * 64], ["amplitudes", 2], ["noise_magnitudes", 5]]
# (case id, encoder kwargs (JSON), spectral_fn kwargs of compute_logmel or None: its default)
CASES = [
    ("resnet_sinusoidal_default", {"output_splits": SPLITS, "size": "small"}, None),
    # papers/icml2020/pretrain_model.gin's f0_spectral/compute_logmel.
    ("resnet_sinusoidal_icml2020_logmel", {"output_splits": SPLITS, "size": "small"},
     {"lo_hz": 0.0, "hi_hz": 8000.0, "bins": 229, "fft_size": 2048, "overlap": 0.75, "pad_end": True}),
]


def audio_batch(rng):
    """[2, N_SAMPLES]: two harmonic tones with a little noise."""
    t = np.arange(N_SAMPLES) / SAMPLE_RATE
    tones = [sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6)) for f0 in (220.0, 587.0)]
    return (np.stack(tones) + 0.01 * rng.normal(size=(2, N_SAMPLES))).astype(np.float32)


def periodic_value(rng, base, variable):
    shape = tuple(variable.shape)
    n = int(np.prod(shape))
    pattern = base[(np.arange(n) + rng.integers(PERIOD)) % PERIOD].reshape(shape)
    name = variable.name.split("/")[-1].split(":")[0]
    if name == "scale":
        return (1.0 + 0.1 * pattern).astype(np.float32)
    if name in ("shift", "bias"):
        return (0.1 * pattern).astype(np.float32)
    return (pattern / np.sqrt(np.prod(shape[:-1]))).astype(np.float32)


def record(out_dir):
    rng = np.random.default_rng(SEED)
    base = rng.normal(size=PERIOD)
    os.makedirs(out_dir, exist_ok=True)
    audio = audio_batch(rng)
    arrays, manifest = {"audio": audio}, []
    tmp = tempfile.mkdtemp()
    try:
        for case_id, init, spectral in CASES:
            kwargs = {"output_splits": tuple(tuple(s) for s in init["output_splits"]), "size": init["size"]}
            if spectral is not None:
                kwargs["spectral_fn"] = functools.partial(spectral_ops.compute_logmel, **spectral)
            encoder = encoders.ResnetSinusoidalEncoder(**kwargs)
            features = {"audio": tf.constant(audio)}
            encoder(features)  # builds the variables
            for variable in encoder.weights:
                variable.assign(periodic_value(rng, base, variable))
            prefix = tf.train.Checkpoint(model=encoder).write(os.path.join(tmp, case_id))
            shutil.copy(prefix + ".index", os.path.join(out_dir, case_id + ".index"))
            with open(prefix + ".data-00000-of-00001", "rb") as src:
                with lzma.open(os.path.join(out_dir, case_id + ".data-00000-of-00001.xz"), "wb") as dst:
                    dst.write(src.read())
            raw = encoder(features, training=False)
            for key, value in raw.items():
                arrays[f"{case_id}/raw/{key}"] = value.numpy()
            model = models.InverseSynthesis(sinusoidal_encoder=encoder, reverb=False, n_samples=N_SAMPLES,
                                            sample_rate=SAMPLE_RATE)
            outputs = model.forward(features, training=False)
            for key in ("sin_freqs", "sin_amps", "noise_magnitudes"):
                arrays[f"{case_id}/model/{key}"] = outputs[key].numpy()
            # sin_audio adds random filtered noise: the sinusoids' signal alone is deterministic.
            arrays[f"{case_id}/model/sinusoidal_signal"] = outputs["sinusoidal"]["signal"].numpy()
            manifest.append({"id": case_id, "init": init, "spectral_fn": spectral,
                             "n_variables": len(encoder.weights),
                             "n_values": int(sum(np.prod(v.shape) for v in encoder.weights))})
            print(case_id, {k: v.shape for k, v in arrays.items() if k.startswith(case_id)})
    finally:
        shutil.rmtree(tmp)
    np.savez_compressed(os.path.join(out_dir, "arrays.npz"), **arrays)
    header = {"ddsp_version": ddsp.__version__, "tensorflow_version": tf.__version__,
              "recorded_by": "scripts/golden/record_upstream_encoders.py", "seed": SEED,
              "sample_rate": SAMPLE_RATE, "n_samples": N_SAMPLES}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump({"header": header, "cases": manifest}, f, indent=1)


if __name__ == "__main__":
    record(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT)
