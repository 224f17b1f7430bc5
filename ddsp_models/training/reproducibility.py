"""One seed makes a training run repeatable in a new process on the same machine.

`seed_training(seed)` is what every seeded training entry point (the ``train`` stage,
`train_loop.run_train`, `benchmarks/convergence.py`) calls before it builds a model:

* ``keras.utils.set_random_seed(seed)``: Python's, numpy's and TensorFlow's global
  generators, so the weight initialisation repeats. (The data order and the draws inside
  the model, filtered noise and sampled latents, are seeded separately by the data provider's
  and the `Trainer`'s seed: `train_loop.apply_seed`, `ddsp_models.seeding`.)
* `deterministic_graphs()`: TensorFlow's graph optimiser (grappler) off for the process.
  Its rewrites of a traced train step are not the same from one process to the next: with
  it on, the ZMidiAutoencoder run of ``params.yaml`` summed its loss terms in a different
  order in most pairs of processes (``total_loss`` differing in the last bit from step 1
  to 3), its note encoder's weights drifted apart from step 3 to 95, and seven 150-step
  runs at seed 0 ended at loudness L1 5.8 to 11.1 dB. With it off, runs are bit-identical.
  On CPU it costs no measurable time (`benchmarks/train_step.py`, full-size model: the
  same step time within 3 % at batch 1, 4 and 16); on a GPU its fused kernels and layout
  changes are given up (unmeasured here); an unseeded run (the training CLI without a
  ``train.seed`` binding) keeps them.

The setting is process-wide and must come before the first traced function runs on any
thread (each thread reads it when it first calls a function).
"""
import keras
import tensorflow as tf


def deterministic_graphs() -> None:
    """Turns TensorFlow's graph optimiser (grappler) off for this process."""
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def graphs_are_deterministic() -> bool:
    """Whether `deterministic_graphs` is in effect."""
    return bool(tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False))


def seed_training(seed: int) -> None:
    """Seeds the global generators (weight initialisation) and makes graphs deterministic.

    Args:
      seed: a non-negative int (``train.seed``).
    """
    keras.utils.set_random_seed(int(seed))
    deterministic_graphs()
