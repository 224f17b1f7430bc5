"""Train-step and resynthesis speed of the full-size solo_instrument model, plus a profile.

    .venv/bin/python benchmarks/train_step.py              # the table (each size in its own process)
    .venv/bin/python benchmarks/train_step.py --profile    # where a train step's time goes
    .venv/bin/python benchmarks/train_step.py --jit        # XLA-compiled replica step
    .venv/bin/python benchmarks/train_step.py --precision-ab --batch 16   # float32 vs bf16

Model: the packaged models/solo_instrument.gin as is (4 s at 16 kHz, 1000 decoder time
steps, RnnFcDecoder 512 GRU + 3-layer 512 FC stacks, 60 harmonics, 65 noise bands, trainable
48000-sample reverb, multi-scale spectral loss). Inputs are synthetic harmonic notes.
Times are medians over timed repeats after one warm-up (tracing) call; peak RSS is the
process's ru_maxrss, tracing included.

Side by side with the original DDSP 3.7.0 (same machine, same run, same model and inputs)::

    bash ../shared/upstream/setup_venv.sh /tmp/ddsp-upstream      # once, ~3 min
    .venv/bin/python benchmarks/train_step.py --compare-upstream /tmp/ddsp-upstream/bin/python

runs `benchmarks/upstream_step.py` under the original's interpreter for every size, right
after ours, and prints both times and the ratio. Without it the table has our times only:
a speed-up is never computed against a figure measured elsewhere or earlier.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SECONDS, SAMPLE_RATE, FRAME_RATE = 4.0, 16000, 250
SIZES = [("train", 1), ("train", 4), ("train", 16), ("resynth", 1), ("resynth", 16)]


def synthetic_batch(batch_size: int, seed: int = 0) -> dict:
    """Harmonic notes (random pitch, 1/k partials, decaying) with f0 and loudness."""
    import numpy as np

    from ddsp_models import spectral_ops

    rng = np.random.default_rng(seed)
    n_samples, n_frames = int(SECONDS * SAMPLE_RATE), int(SECONDS * FRAME_RATE)
    t = np.arange(n_samples) / SAMPLE_RATE
    f0 = rng.uniform(110, 440, size=batch_size)
    audio = np.zeros([batch_size, n_samples])
    for i in range(batch_size):
        for k in range(1, 11):
            audio[i] += 0.3 / k * np.sin(2 * np.pi * k * f0[i] * t)
        audio[i] *= np.exp(-t)
    audio = audio.astype(np.float32)
    loudness = np.asarray(spectral_ops.compute_loudness(audio, use_tf=False), np.float32)
    return {"audio": audio,
            "f0_hz": np.repeat(f0[:, None], n_frames, 1).astype(np.float32),
            "f0_confidence": np.ones([batch_size, n_frames], np.float32),
            "loudness_db": loudness[:, :n_frames]}


EXTRA_BINDINGS = []  # --gin_param values, e.g. "Rnn.fast_gru = False" (the Keras GRU)


def build_model(bindings=()):
    import gin

    from ddsp_models.training import models
    from ddsp_models.training.config import parse_gin

    gin.clear_config()
    parse_gin(["models/solo_instrument.gin"], list(bindings) + EXTRA_BINDINGS)
    return models.get_model()


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KB on Linux


def timed(fn, repeats: int) -> tuple[float, float]:
    """(first call seconds, median of `repeats` further calls)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def run_child(mode: str, batch_size: int, repeats: int, jit: bool,
              precision: str = "float32") -> dict:
    import tensorflow as tf

    from ddsp_models.training.precision import precision_scope
    from ddsp_models.training.trainer import Trainer

    batch = synthetic_batch(batch_size)
    with precision_scope(precision):
        model = build_model()
    result = {"mode": mode, "batch": batch_size, "precision": precision}
    if mode == "train":
        trainer = Trainer(model, learning_rate=3e-4, jit_compile=jit)
        trainer.build(batch)
        tensors = {k: tf.constant(v) for k, v in batch.items()}
        first, step = timed(lambda: trainer.train_step(tensors)["total_loss"].numpy(), repeats)
        result["params"] = sum(int(tf.size(v)) for v in model.trainable_variables)
    else:
        fn = tf.function(lambda features: model(features, training=False)["audio_synth"],
                         jit_compile=jit or None)
        tensors = {k: tf.constant(v) for k, v in batch.items()}  # audio: loudness input
        first, step = timed(lambda: fn(tensors).numpy(), repeats)
    result.update(first_s=first, step_s=step, peak_rss_gb=peak_rss_gb())
    return result


AB_VARIANTS = {
    "jit": (("tf.function", False, "float32"), ("tf.function + XLA jit", True, "float32")),
    "precision": (("float32", False, "float32"), ("mixed_bfloat16", False, "mixed_bfloat16")),
}


def run_ab(kind: str, batch_size: int, repeats: int) -> dict:
    """Paired comparison in one process: the two variants' train steps (`AB_VARIANTS[kind]`:
    plain vs XLA-compiled, or float32 vs bfloat16 mixed precision) alternated, so that
    machine load drifts hit both alike."""
    import tensorflow as tf

    from ddsp_models.training.precision import precision_scope
    from ddsp_models.training.trainer import Trainer

    batch = synthetic_batch(batch_size)
    tensors = {k: tf.constant(v) for k, v in batch.items()}
    trainers = {}
    for label, jit, precision in AB_VARIANTS[kind]:
        with precision_scope(precision):
            trainers[label] = Trainer(build_model(), learning_rate=3e-4, jit_compile=jit)
        trainers[label].build(batch)
    first = {}
    for label, trainer in trainers.items():
        start = time.perf_counter()
        trainer.train_step(tensors)["total_loss"].numpy()
        first[label] = time.perf_counter() - start
    times = {label: [] for label in trainers}
    for _ in range(repeats):
        for label, trainer in trainers.items():
            start = time.perf_counter()
            trainer.train_step(tensors)["total_loss"].numpy()
            times[label].append(time.perf_counter() - start)
    return {"batch": batch_size, "first_s": first,
            "step_s": {label: statistics.median(v) for label, v in times.items()},
            "peak_rss_gb": peak_rss_gb()}


# ------------------------------------------------------------------------ profile
def _fwd_bwd(fn, sources):
    """A tf.function computing fn(*sources) and d sum(fn)^2 / d (sources + fn's variables)."""
    import tensorflow as tf

    @tf.function
    def step(*values):
        with tf.GradientTape() as tape:
            tape.watch(values)
            out = fn(*values)
            loss = tf.add_n([tf.reduce_sum(tf.square(o)) for o in tf.nest.flatten(out)])
        variables = tape.watched_variables()
        return tape.gradient(loss, list(values) + list(variables))

    return step


def run_profile(batch_size: int, repeats: int) -> dict:
    """Times each component's forward + backward pass on its own, and the whole step."""
    import numpy as np
    import tensorflow as tf

    from ddsp_models.training.trainer import Trainer

    batch = synthetic_batch(batch_size)
    model = build_model()
    trainer = Trainer(model, learning_rate=3e-4)
    trainer.build(batch)
    tensors = {k: tf.constant(v) for k, v in batch.items()}
    outputs = model(tensors, training=False)
    decoder, group = model.decoder, model.processor_group
    parts = {}

    def add(name, fn, *inputs):
        step = _fwd_bwd(fn, [tf.constant(x) for x in inputs])
        parts[name] = timed(lambda: [np.asarray(g) for g in step(*inputs) if g is not None],
                            repeats)[1]

    features = {k: outputs[k] for k in ("f0_scaled", "ld_scaled")}
    add("decoder, whole (RnnFcDecoder)", lambda f0, ld: decoder(
        {"f0_scaled": f0, "ld_scaled": ld}, training=True),
        features["f0_scaled"], features["ld_scaled"])
    for name, layer, x in _decoder_parts(decoder, features):
        add(name, lambda inputs, layer=layer: layer(inputs), x)
    controls = {k: outputs[k] for k in ("amps", "harmonic_distribution", "noise_magnitudes",
                                        "f0_hz")}
    harmonic, noise, reverb = group.harmonic, group.filtered_noise, group.reverb
    add("harmonic synth", lambda a, h: harmonic(a, h, controls["f0_hz"]),
        controls["amps"], controls["harmonic_distribution"])
    add("filtered noise", lambda m: noise(m), controls["noise_magnitudes"])
    add("reverb (48000-tap FFT conv)", lambda a: reverb(a), outputs["add/signal"])
    spectral = model.loss_objs[0]
    add("spectral loss (6 scales)", lambda a: spectral(tensors["audio"], a),
        outputs["audio_synth"])
    _, whole = timed(lambda: trainer.train_step(tensors)["total_loss"].numpy(), repeats)
    return {"batch": batch_size, "parts": parts, "train_step_s": whole,
            "peak_rss_gb": peak_rss_gb()}


def _decoder_parts(decoder, features):
    """(name, layer, input) for the decoder's recurrent and fully connected sub-layers,
    found by type name, with inputs of the shapes they see in the model."""
    import tensorflow as tf

    batch, steps = features["f0_scaled"].shape[:2]
    found = []
    for attribute, layer in sorted(vars(decoder).items()):
        if attribute.startswith("_"):
            continue
        layers = layer if isinstance(layer, (list, tuple)) else [layer]
        for index, sub in enumerate(layers):
            kind = type(sub).__name__
            if not hasattr(sub, "weights") or not sub.weights:
                continue
            in_dim = _input_dim(sub)
            if in_dim is None:
                continue
            label = f"  decoder.{attribute}{f'[{index}]' if len(layers) > 1 else ''} ({kind})"
            found.append((label, sub, tf.random.normal([batch, steps, in_dim])))
    return found


def _input_dim(layer):
    """The input width of a built layer: the first kernel's first dimension."""
    for weight in layer.weights:
        if len(weight.shape) == 2 and "kernel" in weight.path and "recurrent" not in weight.path:
            return int(weight.shape[0])
    return None


# ------------------------------------------------------------------------ driver
def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", action="store_true", help="per-component time shares")
    parser.add_argument("--jit", action="store_true", help="XLA-compile (jit_compile=True)")
    parser.add_argument("--jit-ab", action="store_true",
                        help="alternate plain and XLA train steps in one process (--batch)")
    parser.add_argument("--precision-ab", action="store_true",
                        help="alternate float32 and bfloat16 mixed-precision train steps in "
                             "one process (--batch)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per size")
    parser.add_argument("--batch", type=int, default=4, help="batch size for --profile")
    parser.add_argument("--sizes", default=",".join(f"{m}:{b}" for m, b in SIZES),
                        help="comma-separated mode:batch, e.g. train:4,resynth:16")
    parser.add_argument("--precisions", default="float32",
                        help="comma-separated: float32, mixed_bfloat16 (a row each)")
    parser.add_argument("--gin_param", action="append", default=[],
                        help='extra binding, e.g. "Rnn.fast_gru = False" for the Keras GRU')
    parser.add_argument("--compare-upstream", default=None, metavar="VENV_PYTHON",
                        help="the original DDSP's python (../shared/upstream/setup_venv.sh): "
                             "time it on the same sizes, right after ours")
    parser.add_argument("--upstream-strategy", choices=("mirrored", "default"),
                        default="mirrored", help="the original's distribution strategy")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from ddsp_models.cli_logging import configure_cli_logging

    configure_cli_logging("WARNING")
    EXTRA_BINDINGS.extend(args.gin_param)

    if args.child:
        if args.child == "profile":
            result = run_profile(args.batch, args.repeats)
        elif args.child.endswith("-ab"):
            result = run_ab(args.child[:-len("-ab")], args.batch, args.repeats)
        else:
            mode, batch, precision = args.child.split(":")
            result = run_child(mode, int(batch), args.repeats, args.jit, precision)
        print("RESULT " + json.dumps(result), flush=True)
        return

    if args.profile:
        result = _spawn("profile", args)
        if result:
            print(f"\nper-component forward+backward, batch {result['batch']} "
                  f"(each part timed alone in tf.function):")
            total = result["train_step_s"]
            print(f"{'component':46s} {'seconds':>8s} {'share of step':>14s}")
            for name, seconds in result["parts"].items():
                print(f"{name:46s} {seconds:8.3f} {100 * seconds / total:13.1f}%")
            print(f"{'whole train step':46s} {total:8.3f} {100.0:13.1f}%")
            print(f"peak RSS {result['peak_rss_gb']:.2f} GB")
        return

    for kind, wanted in (("jit", args.jit_ab), ("precision", args.precision_ab)):
        if not wanted:
            continue
        result = _spawn(f"{kind}-ab", args)
        if result:
            print(f"train step, batch {result['batch']}, median of {args.repeats} alternated "
                  "steps:")
            base = result["step_s"][AB_VARIANTS[kind][0][0]]
            for label, _, _ in AB_VARIANTS[kind]:
                print(f"  {label:24s} {result['step_s'][label]:7.3f} s   "
                      f"({base / result['step_s'][label]:.2f}x; first call "
                      f"{result['first_s'][label]:.1f} s)")
        return

    sizes = [(m, int(b)) for m, b in (s.split(":") for s in args.sizes.split(","))]
    rows = []
    if args.compare_upstream and not os.path.isfile(args.compare_upstream):
        parser.error(f"--compare-upstream: {args.compare_upstream!r} is not a file (expected "
                     "the original DDSP venv's bin/python; ../shared/upstream/setup_venv.sh)")
    from ddsp_models.training.precision import check_precision

    precisions = [check_precision(p) for p in args.precisions.split(",")]
    for mode, batch in sizes:
        results = [_spawn(f"{mode}:{batch}:{precision}", args) for precision in precisions]
        upstream = (_spawn_upstream(mode, batch, args) if args.compare_upstream and any(results)
                    else None)
        for result in results:
            if result:
                result["upstream"] = upstream
                rows.append(result)
                _print_rows(rows[-1:], header=len(rows) == 1)
    print()


def _result_of(proc, what: str):
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(f"{what}: failed (exit {proc.returncode})\n{proc.stderr[-3000:]}")
        return None
    return json.loads(lines[-1][len("RESULT "):])


def _spawn_upstream(mode: str, batch: int, args):
    """The original DDSP's time for one size, in a process of its own interpreter."""
    command = [args.compare_upstream, os.path.join(REPO, "benchmarks", "upstream_step.py"),
               "--mode", mode, "--batch", str(batch), "--repeats", str(args.repeats),
               "--strategy", args.upstream_strategy]
    proc = subprocess.run(command, capture_output=True, text=True, cwd="/")
    return _result_of(proc, f"original DDSP {mode}:{batch}")


def _spawn(child: str, args):
    command = [sys.executable, os.path.abspath(__file__), "--child", child,
               "--repeats", str(args.repeats), "--batch", str(args.batch)]
    if args.jit:
        command.append("--jit")
    for binding in args.gin_param:
        command += ["--gin_param", binding]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    return _result_of(proc, child)


def _print_rows(rows, header):
    if header:
        print(f"{'mode':8s} {'batch':>5s} {'precision':>14s} {'first (s)':>10s} {'ours (s)':>9s} "
              f"{'orig (s)':>9s} "
              f"{'ratio':>7s} {'peak RSS GB':>12s} {'orig GB':>8s}")
    for r in rows:
        up = r.get("upstream") or {}
        orig_s, orig_gb = up.get("step_s"), up.get("peak_rss_gb")
        ratio = f"{orig_s / r['step_s']:.2f}x" if orig_s else "-"
        print(f"{r['mode']:8s} {r['batch']:5d} {r['precision']:>14s} {r['first_s']:10.2f} "
              f"{r['step_s']:9.3f} "
              f"{(f'{orig_s:.3f}' if orig_s else '-'):>9s} {ratio:>7s} "
              f"{r['peak_rss_gb']:12.2f} {(f'{orig_gb:.2f}' if orig_gb else '-'):>8s}"
              + (f"   ({r['params'] / 1e6:.2f} M params)" if "params" in r else ""), flush=True)


if __name__ == "__main__":
    main()
