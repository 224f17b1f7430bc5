"""SpectralLoss forward + gradient w.r.t. audio (tf.function), batch 16 x 64000 samples.

Compares this project's SpectralLoss with the same loss built on TF's generic STFT
gradient (tf.signal.stft + autodiff). Runs are interleaved; the minimum of the repeats is
reported (the least disturbed by other load on the machine), with the median CPU time of
the process (all threads), which other load disturbs less than wall time.

Usage: .venv/bin/python benchmarks/spectral_loss.py [batch] [repeats]
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # one tf.function per variant: retracing warnings are expected.

from ddsp_models import losses  # noqa: E402
from ddsp_models.cli_logging import configure_cli_logging  # noqa: E402

CONFIGS = {
    "mag (default)": {},
    "mag + logmag": dict(logmag_weight=1.0),
    "all per-scale terms": dict(logmag_weight=1.0, delta_time_weight=1.0, delta_freq_weight=1.0,
                                cumsum_freq_weight=1.0),
    "loudness only": dict(mag_weight=0.0, loudness_weight=1.0),
}


def generic_stft_loss(target, audio, fft_sizes=(2048, 1024, 512, 256, 128, 64), logmag_weight=0.0):
    """Reference: the same L1 magnitude (+ logmag) loss with TF's own STFT gradient."""
    loss = 0.0
    for size in fft_sizes:
        t = tf.abs(tf.signal.stft(target, size, size // 4, size, pad_end=True))
        v = tf.abs(tf.signal.stft(audio, size, size // 4, size, pad_end=True))
        loss += tf.reduce_mean(tf.abs(t - v))
        if logmag_weight:
            loss += logmag_weight * tf.reduce_mean(tf.abs(tf.math.log(tf.maximum(t, 1e-5))
                                                          - tf.math.log(tf.maximum(v, 1e-5))))
    return loss


def make_step(loss_fn, target, audio):
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = loss_fn(target, audio)
        return value, tape.gradient(value, audio)
    return step


def main():
    configure_cli_logging("WARNING")
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rng = np.random.default_rng(0)
    target = tf.constant(0.1 * rng.standard_normal((batch, 64000)).astype(np.float32))
    audio = tf.Variable(0.1 * rng.standard_normal((batch, 64000)).astype(np.float32))
    steps = {f"SpectralLoss {name}": make_step(losses.SpectralLoss(**kwargs), target, audio)
             for name, kwargs in CONFIGS.items()}
    steps["generic tf.signal.stft mag"] = make_step(generic_stft_loss, target, audio)
    steps["generic tf.signal.stft mag + logmag"] = make_step(
        lambda t, a: generic_stft_loss(t, a, logmag_weight=1.0), target, audio)
    times = {name: [] for name in steps}
    cpu_times = {name: [] for name in steps}
    for step in steps.values():
        step()  # trace
    for _ in range(repeats):
        for name, step in steps.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            value, grad = step()
            grad.numpy()
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - cpu_start)
    print(f"batch {batch} x 64000 samples, forward + gradient, {repeats} repeats, {os.cpu_count()} CPUs")
    print(f"{'loss':40s} {'wall min ms':>12s} {'wall median ms':>15s} {'CPU median ms':>14s}")
    for name, values in times.items():
        print(f"{name:40s} {1000 * min(values):12.0f} {1000 * np.median(values):15.0f} "
              f"{1000 * np.median(cpu_times[name]):14.0f}")


if __name__ == "__main__":
    main()
