"""The training command line trains from gin configs and resumes where it stopped."""
import numpy as np

from ddsp_models.training import data
from ddsp_models.training.config import latest_operative_config
from ddsp_models.training.run import main
from ddsp_models.training.train_loop import read_loss_log
from model_fixtures import harmonic_notes, shrink_bindings

SECONDS = 0.256


def test_command_line_trains_from_configs_on_tfrecords_and_resumes(tmp_path):
    notes = harmonic_notes(n_examples=2, seconds=SECONDS, seed=11)
    notes["power_db"] = notes["loudness_db"]  # the TFRecord schema carries power too
    records = tmp_path / "train.tfrecord"
    assert data.write_tfrecord(str(records), [
        {key: value[i] for key, value in notes.items()} for i in range(2)]) == 2
    save_dir = tmp_path / "run"
    bindings = shrink_bindings(seconds=SECONDS, width=4) + [
        f"TFRecordProvider.file_pattern = '{records}'",
        f"TFRecordProvider.example_secs = {SECONDS}",
        "train.batch_size = 2", "train.steps_per_summary = 1", "train.steps_per_save = 2"]

    def command(num_steps):
        args = ["--save_dir", str(save_dir), "--gin_file", "papers/iclr2020/solo_instrument.gin"]
        for binding in bindings + [f"train.num_steps = {num_steps}"]:
            args += ["--gin_param", binding]
        return args

    assert main(command(2)) == 0
    first = read_loss_log(save_dir)
    assert [line["step"] for line in first] == [1, 2]
    assert all(np.isfinite(line["losses"]["total_loss"]) for line in first)
    assert latest_operative_config(save_dir).endswith("operative_config-2.gin")

    # The same command with a higher step target continues from step 2, not from zero.
    assert main(command(3)) == 0
    steps = [line["step"] for line in read_loss_log(save_dir)]
    assert steps == [1, 2, 3]
