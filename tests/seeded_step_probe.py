"""Run by tests/test_reproducibility.py in fresh processes: trains a ``params.yaml`` run
(as its ``train`` stage configures it, on the dataset given) for a few steps on one fixed
batch, seeded by ``train.seed``, and prints one JSON line: the ``total_loss`` of every
step and a digest of the final trainable weights.

    python tests/seeded_step_probe.py DATA_DIR RUN STEPS
"""
import hashlib
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(data_dir: str, run: str, steps: int) -> dict:
    import gin
    import numpy as np

    from ddsp_models.training import models, run_config
    from ddsp_models.training.config import parse_gin
    from ddsp_models.training.params import load_params
    from ddsp_models.training.reproducibility import seed_training
    from ddsp_models.training.trainer import Trainer

    params = load_params(os.path.join(REPO, "params.yaml"), {
        "train": {run: {"rnn_channels": 16, "mlp_units": 16, "z_dims": 4}}})
    info = run_config.dataset_info(data_dir)
    files, bindings = run_config.gin_config(params, run, info)
    parse_gin(files, bindings)
    seed = params["train"]["seed"]
    seed_training(seed)
    provider = gin.query_parameter("train.data_provider").scoped_configurable_fn()
    trainer = Trainer(models.get_model(), seed=seed, learning_rate=3e-3)
    batch = next(iter(provider.get_batch(2, shuffle=False, repeats=1)))
    batch = {key: value for key, value in batch.items() if key != "id"}
    trainer.build(batch)
    losses = [float(trainer.train_step(batch)["total_loss"]) for _ in range(steps)]
    digest = hashlib.sha1(b"".join(np.asarray(v).tobytes()
                                   for v in trainer.model.trainable_variables)).hexdigest()
    return {"total_loss": losses, "weights_sha1": digest}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
