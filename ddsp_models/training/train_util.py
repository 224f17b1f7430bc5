"""The original DDSP's ``training.train_util`` names: paths of the newest checkpoint and
operative config, the gin config writer, the distribution strategy and the training loop.

The loop and the strategy live in `train_loop.train` and `trainer.get_strategy`; the lookups
here keep the original's contract (``FileNotFoundError`` when nothing matches) on top of
`models.model.resolve_checkpoint` and `config.write_operative_config`.
"""
import glob
import os
import re

import gin

from ddsp_models.training import summaries
from ddsp_models.training.checkpoints import resolve_checkpoint
from ddsp_models.training.config import write_operative_config
from ddsp_models.training.train_loop import train  # noqa: F401 - the original's name
from ddsp_models.training.trainer import get_strategy  # noqa: F401 - the original's name


def expand_path(file_path):
    """`file_path` with ``~`` and environment variables expanded."""
    return os.path.expanduser(os.path.expandvars(file_path))


def get_latest_file(dir_path, prefix="operative_config-", suffix=".gin"):
    """The ``<dir_path>/<prefix><n><suffix>`` file with the largest n.

    Raises:
      FileNotFoundError: no file matches, or a match's middle part is not an integer.
    """
    dir_prefix = os.path.join(expand_path(dir_path), prefix)
    pattern = glob.escape(dir_prefix) + "*" + glob.escape(suffix)
    paths = glob.glob(pattern)
    if not paths:
        raise FileNotFoundError(f"No files found matching the pattern '{pattern}'.")
    steps = {}
    for path in paths:
        middle = path[len(dir_prefix):len(path) - len(suffix)]
        if not re.fullmatch(r"-?\d+", middle):
            raise FileNotFoundError(f"Files found with pattern '{pattern}' do not match the "
                                    f"pattern '{dir_prefix}[iteration_number]{suffix}': {paths}")
        steps[path] = abs(int(middle))
    return max(paths, key=steps.get)


def get_latest_checkpoint(checkpoint_path):
    """A checkpoint prefix as given, or the newest one in a folder.

    Raises:
      FileNotFoundError: neither a checkpoint nor a folder holding one.
    """
    try:
        return resolve_checkpoint(expand_path(checkpoint_path))
    except ValueError as error:
        raise FileNotFoundError(str(error)) from None


def get_latest_operative_config(restore_dir):
    """The newest ``operative_config-<step>.gin`` in `restore_dir` (or in the folder of a
    file path given, e.g. a checkpoint). FileNotFoundError when there is none."""
    try:
        return get_latest_file(restore_dir, prefix="operative_config-", suffix=".gin")
    except FileNotFoundError:
        return get_latest_file(os.path.dirname(expand_path(restore_dir)),
                               prefix="operative_config-", suffix=".gin")


def write_gin_config(summary_writer, save_dir, step):
    """Writes gin's operative config to ``<save_dir>/operative_config-<step>.gin`` and, as
    markdown text, to `summary_writer` (tag ``gin/operative_config-<step>``)."""
    path = write_operative_config(save_dir, step)
    lines = []
    for line in gin.operative_config_str().splitlines():
        if not line.startswith("#"):
            lines.append("    " + line)
        elif line[2:].startswith("===="):
            lines.append("")
        elif line.endswith(":"):
            lines.append("#### " + line[2:])
        else:
            lines.append(line[2:])
    with summary_writer.as_default():
        summaries.text_summary(f"gin/operative_config-{int(step)}", "\n".join(lines), int(step))
        summary_writer.flush()
    return path
