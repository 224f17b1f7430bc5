"""Speed of the decoder's GRU: keras.layers.GRU against gru.FastGRU (its time-loop variants).

    .venv/bin/python benchmarks/rnn.py                       # [B, 1000, 1024] -> 512, B = 1, 4, 16
    .venv/bin/python benchmarks/rnn.py --batch 1 --repeats 9 --impl keras xla_step
    .venv/bin/python benchmarks/rnn.py --intra-threads 1     # TF thread-pool settings

The layer size is the full-size solo_instrument decoder's GRU (512 units over 1000 time
steps, 1024 input channels). 'fwd' is a tf.function forward pass; 'fwd+bwd' a tf.function
forward pass plus the gradient of a scalar loss w.r.t. the input and every weight. Each
implementation is traced and run once (warm-up), then the implementations take turns
(round-robin, so background load hits them alike) for `--repeats` timed calls; the table
shows the median wall-clock time (and the minimum) in milliseconds, and the median CPU time of
the process (all threads). The machine load average is printed: on a shared, busy machine the
wall-clock times stretch; compare rows of the same run, and see the CPU times.
"""
import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMPLEMENTATIONS = ("keras", "xla_loop", "xla_step", "graph")


def make_layer(impl: str, units: int):
    import keras

    from ddsp_models.training import gru

    if impl == "keras":
        return keras.layers.GRU(units, return_sequences=True)
    return gru.FastGRU(units, recurrence=impl, return_sequences=True)


def make_functions(layer, x):
    """(forward, forward+backward) tf.functions, each traced and run once."""
    import tensorflow as tf

    layer(x[:, :2])  # build

    @tf.function
    def forward(x):
        return layer(x)

    @tf.function
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x] + layer.trainable_weights)

    for fn in (forward, forward_backward):
        _block(fn(x))
    return forward, forward_backward


def _block(result):
    import tensorflow as tf

    for tensor in tf.nest.flatten(result):
        tensor.numpy()


def run(batch: int, impls, time_steps: int, input_dims: int, units: int, repeats: int) -> dict:
    """{(impl, 'fwd' | 'fwd+bwd'): [(wall seconds, process CPU seconds) per timed call]}."""
    import tensorflow as tf

    x = tf.random.stateless_normal([batch, time_steps, input_dims], seed=[0, batch])
    functions = {impl: make_functions(make_layer(impl, units), x) for impl in impls}
    times = {(impl, mode): [] for impl in impls for mode in ("fwd", "fwd+bwd")}
    for _ in range(repeats):
        for impl in impls:
            for mode, fn in zip(("fwd", "fwd+bwd"), functions[impl]):
                start, start_cpu = time.perf_counter(), time.process_time()
                _block(fn(x))
                times[(impl, mode)].append((time.perf_counter() - start, time.process_time() - start_cpu))
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--impl", nargs="+", default=list(IMPLEMENTATIONS), choices=IMPLEMENTATIONS)
    parser.add_argument("--time-steps", type=int, default=1000)
    parser.add_argument("--input-dims", type=int, default=1024)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--intra-threads", type=int, default=0, help="0: TF default")
    parser.add_argument("--inter-threads", type=int, default=0, help="0: TF default")
    args = parser.parse_args(argv)
    from ddsp_models.cli_logging import configure_cli_logging

    configure_cli_logging("WARNING")

    import tensorflow as tf

    if args.intra_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_threads)
    if args.inter_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_threads)

    print(f"GRU {args.units} units, [batch, {args.time_steps}, {args.input_dims}] inputs; TF {tf.__version__}, "
          f"{os.cpu_count()} CPUs, threads intra={args.intra_threads or 'default'} "
          f"inter={args.inter_threads or 'default'}; {args.repeats} timed calls each, median (min) ms")
    header = (f"{'batch':>5} | {'implementation':<16} | {'fwd wall (min)':>17} | {'fwd+bwd wall (min)':>18} | "
              f"{'fwd cpu':>8} | {'fwd+bwd cpu':>11} | {'fwd+bwd speed-up':>16}")
    print(header)
    print("-" * len(header))
    for batch in args.batch:
        load_before = os.getloadavg()[0]
        times = run(batch, args.impl, args.time_steps, args.input_dims, args.units, args.repeats)
        wall = {key: [w for w, _ in values] for key, values in times.items()}
        cpu = {key: [c for _, c in values] for key, values in times.items()}
        reference = statistics.median(wall[("keras", "fwd+bwd")]) if "keras" in args.impl else None
        for impl in args.impl:
            cells = [f"{statistics.median(wall[(impl, mode)]) * 1e3:8.0f} ({min(wall[(impl, mode)]) * 1e3:6.0f})"
                     for mode in ("fwd", "fwd+bwd")]
            cpu_cells = [f"{statistics.median(cpu[(impl, mode)]) * 1e3:.0f}" for mode in ("fwd", "fwd+bwd")]
            speedup = (f"{reference / statistics.median(wall[(impl, 'fwd+bwd')]):15.1f}x"
                       if reference else f"{'':>16}")
            name = "keras.layers.GRU" if impl == "keras" else f"FastGRU {impl}"
            print(f"{batch:>5} | {name:<16} | {cells[0]:>17} | {cells[1]:>18} | {cpu_cells[0]:>8} | "
                  f"{cpu_cells[1]:>11} | {speedup}")
        print(f"{'':>5}   (load average {load_before:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
