"""CREPE speed: seconds of compute per second of 16 kHz audio, and where the time goes.

    .venv/bin/python benchmarks/crepe.py                    # main table (tiny/full x 100/250 fps)
    .venv/bin/python benchmarks/crepe.py --explore          # + formulation / batch / XLA table
    .venv/bin/python benchmarks/crepe.py --intra 2 --inter 1  # TF thread pools (set before TF starts)

Each cell: one warm-up call, then the median of --repeats timed calls of `compute_f0` on
--seconds of a harmonic tone; the breakdown re-times the three stages separately
(framing in numpy, the tf.function network incl. per-frame normalisation, decoding =
Viterbi + local weighted average). The machine's 1-minute load average is printed: other
processes on a 2-core machine inflate every number.

What the measurements chose (2-core Xeon with AVX-512, TF 2.21 CPU/oneDNN; the machine was
shared with other jobs (load 3-6), so choices used process CPU time):
  * CREPE's Conv2D on [frames, 1024, 1, 1] with the stride-4 first layer along the
    height axis is oneDNN's slow case (full: 23 CPU-ms/frame for conv1 alone). The same
    layer as a stride-1 convolution over 4 polyphase channels (`network.PolyphaseConv2D`)
    or as a width-strided Conv1D takes ~2 CPU-ms/frame. The Keras model uses the former
    (weights stay 1:1 with CREPE's checkpoints): full 43 -> 22 CPU-ms/frame, tiny
    1.95 -> 0.52. A channels-last Conv1D network measured the same as this one.
  * `compute_f0` runs `network.FrozenCrepeNetwork`: constant weights, folded batch-norm
    and, for the wide capacities, FFT convolutions with precomputed kernel spectra
    (`network.FFT_LAYERS`): full 20 (all direct) -> 9.5 (FFT conv2) -> 7.9 (FFT conv2-6)
    CPU-ms/frame, activations equal to ~4e-7. Tiny gains nothing from FFTs.
    Per capacity (process CPU ms/frame, 256 frames, batch 128; direct / FFT conv2 /
    FFT conv2-6): tiny 0.57/0.54/0.61, small 1.6/1.3/1.3, medium 5.9/3.6/3.6,
    large 12.5/6.4/5.9, full 25/10.1/8.8 (small/medium/large timed with random weights).
    With few channels the FFTs and transposes cost what they save.
  * ``jit_compile=True``: 2.5-5x slower on the Keras model (XLA replaces oneDNN's
    convolutions); ~8% faster on the frozen FFT network but it compiles again for every
    new batch shape (each input's last, partial batch), so it is off.
  * Frames per network call: 32-512 within ~10% in CPU time; 128 (`DEFAULT_BATCH_SIZE`).
  * Threads (tf.config.threading, --intra/--inter): intra 1 or 2, inter 1 or default all
    within noise; intra 4 was slower. TF defaults are kept.
  * Viterbi: log-domain, all states (and batch items) at once per frame over the banded
    transitions via a strided window view: ~50-70 us per frame, ~6% of tiny's time at
    100 frames/s, <1% of full's.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--capacities", nargs="+", default=["tiny", "full"])
    parser.add_argument("--frame-rates", nargs="+", type=int, default=[100, 250])
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--intra", type=int, default=0, help="intra-op threads (0: TF default)")
    parser.add_argument("--inter", type=int, default=0, help="inter-op threads (0: TF default)")
    parser.add_argument("--explore", action="store_true", help="also compare formulations")
    parser.add_argument("--explore-frames", type=int, default=256)
    return parser.parse_args()


ARGS = parse_args()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

if ARGS.intra:
    tf.config.threading.set_intra_op_parallelism_threads(ARGS.intra)
if ARGS.inter:
    tf.config.threading.set_inter_op_parallelism_threads(ARGS.inter)

import keras  # noqa: E402

from ddsp_models import crepe  # noqa: E402
from ddsp_models.cli_logging import configure_cli_logging  # noqa: E402
from ddsp_models.crepe import network as crepe_network  # noqa: E402


def flops_per_frame(capacity: str) -> float:
    """Multiply-adds x 2 of one frame through the network."""
    filters = crepe.filter_counts(capacity)
    length, channels, total = crepe.FRAME_SIZE, 1, 0.0
    for f, width, stride in zip(filters, crepe.KERNEL_WIDTHS, crepe.STRIDES):
        length //= stride
        total += 2.0 * length * f * channels * width
        length //= 2
        channels = f
    return total + 2.0 * length * channels * crepe.N_PITCH_BINS


def median_time(fn, repeats):
    """Median wall seconds and median process CPU seconds (all threads) of fn()."""
    fn()  # warm-up (tracing, oneDNN primitive creation)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def load():
    return os.getloadavg()[0]


def main_table():
    batch_size = ARGS.batch_size or crepe.DEFAULT_BATCH_SIZE
    t = np.arange(int(ARGS.seconds * crepe.MODEL_SAMPLE_RATE)) / crepe.MODEL_SAMPLE_RATE
    audio = sum(np.sin(2 * np.pi * k * 220.0 * t) / k for k in range(1, 6)).astype(np.float32)
    print(f"CREPE compute_f0 (viterbi), {ARGS.seconds:g} s of audio, batch {batch_size} frames, "
          f"median of {ARGS.repeats}: seconds per second of audio (wall; 'cpu' = process CPU "
          "seconds, all threads)")
    header = (f"{'capacity':8s} {'fps':>4s} {'frames':>6s} | {'total':>7s} {'cpu':>7s} | "
              f"{'network':>7s} {'framing':>7s} {'decode':>7s} | {'ms/frame':>8s} {'GFLOP/s*':>8s} "
              f"{'load':>5s}")
    print(header)
    print("-" * len(header))
    for capacity in ARGS.capacities:
        predict = crepe.frozen_network(capacity)
        for frame_rate in ARGS.frame_rates:
            load_before = load()
            total, total_cpu = median_time(lambda: crepe.compute_f0(
                audio, frame_rate=frame_rate, capacity=capacity, batch_size=batch_size), ARGS.repeats)
            n_frames = crepe.count_frames(len(audio), crepe.MODEL_SAMPLE_RATE, frame_rate)
            framing, _ = median_time(lambda: crepe.frame_np(audio[None], n_frames, frame_rate), ARGS.repeats)
            frames = crepe.frame_np(audio[None], n_frames, frame_rate)[0]

            def network():
                return [predict(tf.constant(frames[i:i + batch_size])).numpy()
                        for i in range(0, n_frames, batch_size)]

            net, _ = median_time(network, ARGS.repeats)
            activations = np.concatenate(network(), 0)
            decode, _ = median_time(lambda: crepe.activations_to_f0(activations, viterbi=True), ARGS.repeats)
            per_second = lambda x: x / ARGS.seconds  # noqa: E731
            gflops = flops_per_frame(capacity) * n_frames / net / 1e9
            print(f"{capacity:8s} {frame_rate:4d} {n_frames:6d} | {per_second(total):7.3f} "
                  f"{per_second(total_cpu):7.3f} | {per_second(net):7.3f} {per_second(framing):7.4f} "
                  f"{per_second(decode):7.4f} | {1000 * net / n_frames:8.3f} {gflops:8.1f} "
                  f"{max(load_before, load()):5.2f}")
    print("* GFLOP/s: direct-convolution FLOPs / network time (FFT layers do fewer FLOPs).")


def _plain_conv1d_model(capacity, weights):
    """Channels-last Conv1D formulation of the same network (no 2-D reshapes)."""
    frames = keras.Input(shape=(crepe.FRAME_SIZE,))
    y = keras.layers.Reshape((crepe.FRAME_SIZE, 1))(frames)
    layers = []
    for f, w, s in zip(crepe.filter_counts(capacity), crepe.KERNEL_WIDTHS, crepe.STRIDES):
        conv = keras.layers.Conv1D(f, w, strides=s, padding="same", activation="relu")
        bn = keras.layers.BatchNormalization(epsilon=crepe.BATCH_NORM_EPSILON)
        y = keras.layers.MaxPooling1D(2)(bn(conv(y)))
        layers.append((conv, bn))
    y = keras.layers.Flatten()(y)
    dense = keras.layers.Dense(crepe.N_PITCH_BINS, activation="sigmoid")
    model = keras.Model(frames, dense(y))
    for i, (conv, bn) in enumerate(layers, start=1):
        kernel, bias = weights[f"conv{i}"]
        conv.set_weights([kernel[:, 0], bias])
        bn.set_weights(weights[f"conv{i}-BN"])
    dense.set_weights(weights["classifier"])
    return model


def _strided_conv2d_model(capacity, weights):
    """CREPE's original form: every layer a keras Conv2D (strided first layer)."""
    original = crepe_network.PolyphaseConv2D  # build_crepe_model looks it up there
    crepe_network.PolyphaseConv2D = keras.layers.Conv2D
    try:
        return crepe.build_crepe_model(capacity, weights)
    finally:
        crepe_network.PolyphaseConv2D = original


def explore_table():
    print()
    print(f"Network formulations on {ARGS.explore_frames} normalised noise frames, median of "
          f"{ARGS.repeats}: ms per frame (wall, cpu = all threads), max |diff| of activations vs "
          "the Keras model")
    header = f"{'capacity':8s} {'variant':38s} {'wall ms':>8s} {'cpu ms':>8s} {'max|diff|':>9s} {'load':>5s}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    frames = rng.standard_normal([ARGS.explore_frames, crepe.FRAME_SIZE]).astype(np.float32)
    normalised = crepe.normalize_frames(frames)
    for capacity in ARGS.capacities:
        weights = crepe.load_crepe_weights(capacity)
        keras_model = crepe.build_crepe_model(capacity, weights)
        reference = keras_model(normalised[:16]).numpy()
        default_batch = crepe.DEFAULT_BATCH_SIZE
        kept = crepe.FFT_LAYERS[capacity]
        kept_label = "FFT " + ",".join(layer[-1] for layer in kept) if kept else "direct"
        all_fft = tuple(f"conv{i}" for i in range(2, 7))

        def keras_fn(model, jit=False):
            fn = tf.function(lambda x: model(crepe.normalize_frames(x), training=False), jit_compile=jit)
            return fn

        variants = [
            ("Keras Conv2D, strided conv1 (original)", keras_fn(_strided_conv2d_model(capacity, weights)),
             default_batch),
            ("Keras Conv1D channels-last", keras_fn(_plain_conv1d_model(capacity, weights)), default_batch),
            ("Keras Conv2D, polyphase conv1", keras_fn(keras_model), default_batch),
            ("Keras polyphase, jit_compile", keras_fn(keras_model, jit=True), default_batch),
            ("frozen, all direct", crepe.FrozenCrepeNetwork(keras_model, ()), default_batch),
            ("frozen, FFT conv2", crepe.FrozenCrepeNetwork(keras_model, ("conv2",)), default_batch),
            ("frozen, FFT conv2-6", crepe.FrozenCrepeNetwork(keras_model, all_fft), default_batch),
            (f"frozen {kept_label}, jit_compile",
             crepe.FrozenCrepeNetwork(keras_model, kept, jit_compile=True), default_batch),
        ]
        frozen = crepe.FrozenCrepeNetwork(keras_model, kept)
        variants += [(f"frozen {kept_label} (kept), batch {b}", frozen, b) for b in (32, 64, 128, 256, 512)]
        for name, fn, batch in variants:
            batches = [tf.constant(frames[i:i + batch]) for i in range(0, ARGS.explore_frames, batch)]
            load_before = load()
            wall, cpu = median_time(lambda: [fn(b).numpy() for b in batches], ARGS.repeats)
            diff = float(np.abs(fn(tf.constant(frames[:16])).numpy() - reference).max())
            print(f"{capacity:8s} {name:38s} {1000 * wall / ARGS.explore_frames:8.3f} "
                  f"{1000 * cpu / ARGS.explore_frames:8.3f} {diff:9.2e} {max(load_before, load()):5.2f}")


if __name__ == "__main__":
    configure_cli_logging("WARNING")
    print(f"TF {tf.__version__}, {os.cpu_count()} CPUs, intra={ARGS.intra or 'default'}, "
          f"inter={ARGS.inter or 'default'}; FLOP/frame: "
          + ", ".join(f"{c} {flops_per_frame(c) / 1e6:.0f}M" for c in ARGS.capacities))
    main_table()
    if ARGS.explore:
        explore_table()
