"""gin configuration: find configs, read original-DDSP configs unchanged, write operative configs.

Configs written for the original DDSP library work as they are:

- ``import ddsp`` / ``import ddsp.training`` / ``from ddsp.training import models`` lines
  become imports of this package and every module of it that registers configurables;
- configurable references and bindings with the original package prefixes
  (``@ddsp.training.models.Autoencoder()``, ``ddsp.synths.Harmonic.n_samples = ...``,
  ``ddsp.training.trainers.Trainer.learning_rate``) lose the prefix, so they bind to this
  package's classes, which are registered under the same short module names
  (``models.Autoencoder``, ``synths.Harmonic``, ``Trainer``);
- ``include 'models/ae.gin'`` is looked up in the user's search paths, then the configs
  shipped with this package (`GIN_DIR`, ``ddsp_models/training/gin/``: models/, datasets/,
  eval/, optimization/, papers/; package data, so they are there in an installed wheel
  too), then next to the including file.
"""
import glob
import importlib
import logging
import os
import pkgutil
import re
from pathlib import Path

import gin

logger = logging.getLogger(__name__)

PACKAGE = "ddsp_models"
GIN_DIR = Path(__file__).resolve().parent / "gin"  # the packaged configs

# Original fully qualified prefixes -> this package's registration modules (longest first).
_PREFIX_MAP = (
    ("ddsp.training.trainers.", "training."),
    ("ddsp.training.train_util.", "training."),
    ("ddsp.training.", ""),
    ("ddsp.", ""),
    ("trainers.", "training."),
    ("train_util.", "training."),
)
_PREFIX_RE = re.compile(
    r"(?<![\w.])(" + "|".join(re.escape(p) for p, _ in _PREFIX_MAP) + r")(?=[A-Za-z_])")
_STRING_RE = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_IMPORT_RE = re.compile(r"^\s*(?:import\s+(ddsp(?:\.[\w.]+)?)(?:\s+as\s+\w+)?"
                        r"|from\s+(ddsp(?:\.[\w.]+)?)\s+import\s+.+)\s*$")
_INCLUDE_RE = re.compile(r"""^\s*include\s+(['"])(.+?)\1\s*$""")
_OPERATIVE_RE = re.compile(r"operative_config-(\d+)\.gin$")


def registering_modules() -> list[str]:
    """Every module of this package (each registers its configurables on import)."""
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE]
    for info in pkgutil.walk_packages(package.__path__, PACKAGE + "."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            names.append(info.name)
    return names


def import_all() -> list[str]:
    """Imports every module of the package, registering all gin configurables."""
    names = registering_modules()
    for name in names:
        importlib.import_module(name)
    return names


def _map_prefixes(code: str) -> str:
    return _PREFIX_RE.sub(lambda m: dict(_PREFIX_MAP)[m.group(1)], code)


# A bare configurable name: a binding's `Name.param =` or a reference `@Name` (optionally
# scoped, `scope/Name`), not part of a dotted module path.
_BARE_NAME_RE = re.compile(r"(?<![\w.])([A-Za-z_]\w*)(?=\.\w+\s*=|\(|\s*[,)\]]|\s*$)")


def _prefer_own_configurable(code: str) -> str:
    """Qualifies a bare name that is ambiguous only because the Keras layers are registered
    too (``tf.keras.layers.Add`` next to this package's ``processors.Add``): configs that a
    run wrote before those registrations existed say ``Add.name = 'add'``."""
    def qualify(match):
        name = match.group(1)
        try:
            selectors = gin.config._REGISTRY.matching_selectors(name)
        except Exception:  # noqa: BLE001 - not a configurable name: leave it
            return name
        own = [s for s in selectors if not s.startswith("tf.keras.")]
        return own[0] if len(selectors) > 1 and len(own) == 1 else name

    return _BARE_NAME_RE.sub(qualify, code)


def translate_line(line: str) -> str:
    """Maps one config line from the original DDSP's names to this package's.

    Text inside quotes (file paths, names) is left alone; ``# comments`` too.
    """
    parts = _STRING_RE.split(line)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a quoted string
            out.append(part)
            continue
        code, hash_, comment = part.partition("#")
        out.append(_prefer_own_configurable(_map_prefixes(code)) + hash_ + comment)
        if hash_:  # the rest of the line is a comment
            out.extend(parts[i + 1:])
            break
    return "".join(out)


def translate(text: str, imports=None) -> str:
    """Translates a whole config text (see the module docstring).

    Args:
      text: gin config text.
      imports: modules an original ``import ddsp...`` line turns into (default: all).
    """
    lines = []
    imported = False
    for line in text.splitlines():
        if _IMPORT_RE.match(line):
            if not imported:
                for module in imports or registering_modules():
                    lines.append(f"import {module}")
                imported = True
            lines.append(f"# (ddsp_models) was: {line.strip()}")
            continue
        lines.append(translate_line(line))
    return "\n".join(lines) + "\n"


def search_paths(gin_search_paths=()) -> list[str]:
    """Folders searched for config files: the user's, then the packaged `GIN_DIR`."""
    paths = [os.fspath(p) for p in (gin_search_paths or ())]
    if isinstance(gin_search_paths, (str, os.PathLike)):
        paths = [os.fspath(gin_search_paths)]
    if GIN_DIR.is_dir():
        paths.append(str(GIN_DIR))
    return paths


def find_config(name, gin_search_paths=(), relative_to=None) -> str:
    """The path of config `name` (absolute, relative to cwd, or under a search path).

    Raises:
      ValueError: naming the file and the folders searched.
    """
    name = os.fspath(name)
    candidates = [name] if os.path.isabs(name) else []
    if not os.path.isabs(name):
        candidates += [os.path.join(p, name) for p in search_paths(gin_search_paths)]
        if relative_to:
            candidates.append(os.path.join(os.path.dirname(relative_to), name))
        candidates.append(name)
    for path in candidates:
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise ValueError(f"gin file {name!r} not found (searched {search_paths(gin_search_paths)}"
                     f"{' and next to ' + relative_to if relative_to else ''})")


def expand_config_file(path, gin_search_paths=(), _stack=()) -> str:
    """A config file's text with its ``include`` lines replaced by the included files."""
    path = os.path.abspath(os.fspath(path))
    if path in _stack:
        raise ValueError(f"gin file {path!r} includes itself (via {' -> '.join(_stack)})")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = [f"# ==== begin {path}"]
    for line in text.splitlines():
        match = _INCLUDE_RE.match(line)
        if match:
            included = find_config(match.group(2), gin_search_paths, relative_to=path)
            out.append(expand_config_file(included, gin_search_paths, _stack + (path,)))
        else:
            out.append(line)
    out.append(f"# ==== end {path}")
    return "\n".join(out)


def latest_operative_config(folder) -> str | None:
    """The newest ``operative_config-<step>.gin`` in `folder` (None if there is none)."""
    found = []
    for path in glob.glob(os.path.join(os.fspath(folder), "operative_config-*.gin")):
        match = _OPERATIVE_RE.search(path)
        if match:
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


def parse_gin(gin_files=(), gin_bindings=(), gin_search_paths=(), skip_unknown=False,
              operative_config_dir=None, finalize: bool = False) -> str:
    """Parses config files, then bindings, translating original-DDSP names.

    Args:
      gin_files: config files (``'models/solo_instrument.gin'`` resolves against the search
        paths, then the packaged `GIN_DIR`), parsed in order.
      gin_bindings: extra bindings (strings, each one or more lines), parsed last.
      gin_search_paths: folders to look for config files and their includes in first.
      skip_unknown: ignore bindings of unknown configurables (e.g. an old run's config).
      operative_config_dir: a run folder: its newest ``operative_config-*.gin`` is parsed
        first (to resume or evaluate a run with its own settings).
      finalize: lock the config afterwards.

    Returns:
      The translated text that was parsed (files and bindings), for logging.
    """
    import_all()
    if isinstance(gin_files, (str, os.PathLike)):
        gin_files = [gin_files]
    if isinstance(gin_bindings, str):
        gin_bindings = [gin_bindings]
    for path in search_paths(gin_search_paths):
        if path not in gin.config._LOCATION_PREFIXES:  # for includes gin itself resolves
            gin.add_config_file_search_path(path)
    parsed = []
    if operative_config_dir is not None:
        operative = latest_operative_config(operative_config_dir)
        if operative is not None:
            text = translate(expand_config_file(operative, gin_search_paths))
            with gin.unlock_config():
                gin.parse_config(text, skip_unknown=True)
            parsed.append(text)
    for name in gin_files or ():
        path = find_config(name, gin_search_paths)
        text = translate(expand_config_file(path, gin_search_paths))
        try:
            with gin.unlock_config():
                gin.parse_config(text, skip_unknown=skip_unknown)
        except Exception as error:  # noqa: BLE001 - gin/tokenize raise many kinds
            raise ValueError(f"gin file {path}: {error}") from None
        parsed.append(text)
    for binding in gin_bindings or ():
        text = translate(binding)
        try:  # one binding at a time, so an error names the binding
            with gin.unlock_config():
                gin.parse_config(text, skip_unknown=skip_unknown)
        except Exception as error:  # noqa: BLE001 - gin/tokenize raise many kinds
            raise ValueError(f"gin binding {binding!r}: {error}") from None
        parsed.append(text)
    if finalize:
        gin.finalize()
    return "\n".join(parsed)


def write_operative_config(save_dir, step: int) -> str:
    """Writes gin's operative config to ``<save_dir>/operative_config-<step>.gin``."""
    os.makedirs(os.fspath(save_dir), exist_ok=True)
    path = os.path.join(os.fspath(save_dir), f"operative_config-{int(step)}.gin")
    text = gin.operative_config_str()
    tmp = f"{path}.tmp-{os.getpid()}"  # renamed into place: a kill never leaves half a file
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def _resolve(value):
    if isinstance(value, gin.config.ConfigurableReference):
        # `@x()` and macros (`%x`) evaluate; `@x` is the configurable itself.
        return value.scoped_configurable_fn() if value.evaluate else value.scoped_configurable_fn
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    return value


def query_binding(binding: str, default=None):
    """The value the parsed config binds to `binding` (``'scope/Name.param'``), with its
    references resolved: ``@Class()`` and macros built / evaluated now (with their scoped
    bindings), ``@Class`` the configurable class itself; `default` when unbound."""
    try:
        value = gin.query_parameter(binding)
    except ValueError:
        return default
    return _resolve(value)
