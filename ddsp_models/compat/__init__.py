"""Working with what the original DDSP (magenta/ddsp 3.7.0) produced and with code written
for it: its model folders (`load_upstream_model`, `convert`), its ``dataset_statistics.pkl``
(`load_dataset_statistics`), and its module names (`install_ddsp_alias`).

CLI: ``python -m ddsp_models.compat convert ORIGINAL_DIR OUT_DIR`` (see ``--help``).
"""
from ddsp_models.compat.alias import install_ddsp_alias, uninstall_ddsp_alias
from ddsp_models.compat.checkpoints import map_variables, restore_upstream_checkpoint
from ddsp_models.compat.model_folders import (
    convert,
    is_upstream_folder,
    load_upstream_model,
    load_upstream_run,
    parse_upstream_operative_config,
    read_upstream_statistics,
)
from ddsp_models.compat.statistics import load_dataset_statistics, to_run_statistics

__all__ = ["convert", "install_ddsp_alias", "is_upstream_folder", "load_dataset_statistics",
           "load_upstream_model",
           "load_upstream_run", "map_variables", "parse_upstream_operative_config",
           "read_upstream_statistics", "restore_upstream_checkpoint", "to_run_statistics",
           "uninstall_ddsp_alias"]


def _register_run_loader():
    """`training.run_folders.load_run` reads original model folders too."""
    from ddsp_models.training.run_folders import register_run_loader

    register_run_loader(load_upstream_run, first=True)


_register_run_loader()
