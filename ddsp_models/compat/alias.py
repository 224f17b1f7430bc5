"""Opt-in ``ddsp`` module names for code written against the original DDSP.

After `install_ddsp_alias()`, ``import ddsp``, ``ddsp.core.midi_to_hz``, ``from
ddsp.training import models, nn, data, trainers`` and the like resolve to this package's
modules (``ddsp.training.trainers`` -> `ddsp_models.training.trainer`, ...): the entries
of `ALIASES` are put in ``sys.modules``. ``ddsp`` and ``ddsp.training`` are small alias
modules holding their submodules as attributes (this package's own modules are not
changed). Nothing happens on import of this package; `uninstall_ddsp_alias` removes the
names again.
"""
from __future__ import annotations

import importlib
import sys
import types

# Original module -> candidate modules of this package (the first that exists is used).
ALIASES = {
    "ddsp.core": ("ddsp_models.core",),
    "ddsp.spectral_ops": ("ddsp_models.spectral_ops",),
    "ddsp.synths": ("ddsp_models.synths",),
    "ddsp.effects": ("ddsp_models.effects",),
    "ddsp.processors": ("ddsp_models.processors",),
    "ddsp.losses": ("ddsp_models.losses",),
    "ddsp.dags": ("ddsp_models.dags",),
    "ddsp.training.nn": ("ddsp_models.training.nn",),
    "ddsp.training.preprocessing": ("ddsp_models.training.preprocessing",),
    "ddsp.training.encoders": ("ddsp_models.training.encoders",),
    "ddsp.training.decoders": ("ddsp_models.training.decoders",),
    "ddsp.training.models": ("ddsp_models.training.models",),
    "ddsp.training.models.model": ("ddsp_models.training.models.model",),
    "ddsp.training.models.autoencoder": ("ddsp_models.training.models.autoencoder",),
    "ddsp.training.models.midi_autoencoder": ("ddsp_models.training.models.midi_autoencoder",),
    "ddsp.training.models.inverse_synthesis": ("ddsp_models.training.models.inverse_synthesis",),
    "ddsp.training.data": ("ddsp_models.training.data",),
    "ddsp.training.trainers": ("ddsp_models.training.trainer",),
    "ddsp.training.train_util": ("ddsp_models.training.train_util",),
    "ddsp.training.eval_util": ("ddsp_models.training.eval_util",
                                "ddsp_models.training.evaluators"),
    "ddsp.training.evaluators": ("ddsp_models.training.evaluators",),
    "ddsp.training.postprocessing": ("ddsp_models.training.postprocessing",),
    "ddsp.training.inference": ("ddsp_models.training.inference",),
    "ddsp.training.summaries": ("ddsp_models.training.summaries",),
    "ddsp.training.plotting": ("ddsp_models.training.plotting",),
    "ddsp.training.metrics": ("ddsp_models.training.metrics",
                              "ddsp_models.training.evaluation"),
    "ddsp.training.heuristics": ("ddsp_models.training.heuristics",),
}
_PACKAGES = ("ddsp", "ddsp.training")
_MARK = "__ddsp_models_alias__"


def _import_first(candidates):
    for name in candidates:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:  # the module exists but an import inside it failed
                raise
    return None


def _alias_package(name: str, doc: str) -> types.ModuleType:
    module = types.ModuleType(name, doc)
    module.__path__ = []  # a package: `import ddsp.x` looks up sys.modules['ddsp.x']
    setattr(module, _MARK, True)
    return module


def install_ddsp_alias(force: bool = False) -> dict:
    """Makes ``ddsp`` and ``ddsp.*`` importable as aliases of this package's modules.

    Args:
      force: replace a ``ddsp`` module already in ``sys.modules`` (e.g. the original
        library); otherwise that is an error.

    Returns:
      {original module name: this package's module name} of every alias installed
      (modules that do not exist here are left out).

    Raises:
      ValueError: a different ``ddsp`` is already imported (and not `force`).
    """
    existing = sys.modules.get("ddsp")
    if existing is not None and not getattr(existing, _MARK, False) and not force:
        where = getattr(existing, "__file__", existing)
        raise ValueError(f"a 'ddsp' module is already imported ({where}); "
                         "pass force=True to replace it with the ddsp_models alias")
    import ddsp_models

    packages = {
        "ddsp": _alias_package("ddsp", "Alias of ddsp_models (install_ddsp_alias)."),
        "ddsp.training": _alias_package("ddsp.training", "Alias of ddsp_models.training."),
    }
    packages["ddsp"].__version__ = getattr(ddsp_models, "__version__", "3.7.0+ddsp_models")
    packages["ddsp"].training = packages["ddsp.training"]
    installed = {}
    for alias, candidates in ALIASES.items():
        module = _import_first(candidates)
        if module is None:
            continue
        sys.modules[alias] = module
        installed[alias] = module.__name__
        parent, _, child = alias.rpartition(".")
        if parent in packages:
            setattr(packages[parent], child, module)
    for name, package in packages.items():
        sys.modules[name] = package
    return installed


def uninstall_ddsp_alias() -> None:
    """Removes the names `install_ddsp_alias` put in ``sys.modules``."""
    if not getattr(sys.modules.get("ddsp"), _MARK, False):
        return
    for name in list(ALIASES) + list(_PACKAGES):
        sys.modules.pop(name, None)
