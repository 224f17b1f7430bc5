"""The original DDSP 3.7.0's side of `benchmarks/train_step.py --compare-upstream`.

Run with the original's own interpreter (the venv `../shared/upstream/setup_venv.sh` makes),
never with the project's: this script is the only place that imports ``ddsp``, and it does so
in a process of its own::

    /tmp/ddsp-upstream/bin/python benchmarks/upstream_step.py --mode train --batch 4

It builds the original's ``models/solo_instrument.gin`` as shipped with the original, feeds
the same synthetic notes as our side (`benchmarks/train_step.py`'s `synthetic_batch`, rebuilt
here from the same seed with numpy only), and times the original's `Trainer.train_step` (or a
`tf.function` resynthesis) exactly as our side times ours: one warm-up (tracing) call, then the
median of `--repeats` calls. It prints one ``RESULT {json}`` line.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SECONDS, SAMPLE_RATE, FRAME_RATE = 4.0, 16000, 250


def synthetic_audio(batch_size: int, seed: int = 0):
    """The notes of `train_step.synthetic_batch` (same seed, same maths): audio and f0 (Hz)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_samples = int(SECONDS * SAMPLE_RATE)
    t = np.arange(n_samples) / SAMPLE_RATE
    f0 = rng.uniform(110, 440, size=batch_size)
    audio = np.zeros([batch_size, n_samples])
    for i in range(batch_size):
        for k in range(1, 11):
            audio[i] += 0.3 / k * np.sin(2 * np.pi * k * f0[i] * t)
        audio[i] *= np.exp(-t)
    return audio.astype(np.float32), f0


def timed(fn, repeats: int):
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("train", "resynth"), default="train")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--strategy", choices=("mirrored", "default"), default="mirrored",
                        help="mirrored: what the original's ddsp_run uses on CPU")
    args = parser.parse_args()

    # This folder holds benchmarks/crepe.py, which would shadow the `crepe` the original imports.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    import ddsp
    import ddsp.training
    import gin
    import numpy as np
    import tensorflow as tf

    gin_dir = os.path.join(os.path.dirname(ddsp.training.__file__), "gin")
    gin.add_config_file_search_path(gin_dir)
    gin.parse_config_file(os.path.join(gin_dir, "models", "solo_instrument.gin"))

    audio, f0 = synthetic_audio(args.batch)
    n_frames = int(SECONDS * FRAME_RATE)
    loudness = np.asarray(ddsp.spectral_ops.compute_loudness(audio, use_tf=False), np.float32)
    batch = {"audio": audio,
             "f0_hz": np.repeat(f0[:, None], n_frames, 1).astype(np.float32),
             "f0_confidence": np.ones([args.batch, n_frames], np.float32),
             "loudness_db": loudness[:, :n_frames]}

    strategy = (ddsp.training.train_util.get_strategy() if args.strategy == "mirrored"
                else tf.distribute.get_strategy())
    with strategy.scope():
        model = ddsp.training.models.get_model()
        result = {"mode": args.mode, "batch": args.batch, "strategy": args.strategy,
                  "tensorflow": tf.__version__, "ddsp": ddsp.__version__}
        if args.mode == "train":
            trainer = ddsp.training.trainers.Trainer(model, strategy, learning_rate=3e-4)
            trainer.build(batch)
            tensors = {k: tf.constant(v) for k, v in batch.items()}
            first, step = timed(lambda: trainer.train_step(tensors)["total_loss"].numpy(),
                                args.repeats)
            result["params"] = int(sum(np.prod(v.shape) for v in model.trainable_variables))
        else:
            fn = tf.function(lambda features: model(features, training=False)["audio_synth"])
            tensors = {k: tf.constant(v) for k, v in batch.items()}  # audio: loudness input
            first, step = timed(lambda: fn(tensors).numpy(), args.repeats)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    result.update(first_s=first, step_s=step, peak_rss_gb=peak)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
