"""Habits of the code base, checked over its source: one log set-up for every command line
(`ddsp_models.cli_logging`), and no module reaching for another module's private (``_name``)
helpers."""
import ast
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("ddsp_models", "pipelines", "benchmarks", "scripts")
# Run with the original DDSP's own interpreter (they import `ddsp`, never this project).
ORIGINAL_INTERPRETER_SCRIPTS = {"benchmarks/upstream_step.py", "scripts/golden/record_upstream_crepe.py"}


def _python_files(root: pathlib.Path, folders):
    for folder in folders:
        yield from sorted((root / folder).rglob("*.py"))


def _tree(path: pathlib.Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _called_names(tree) -> set:
    """Names of everything called in `tree` (`f(...)` and `x.f(...)` both give ``f``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None))
    return names


# ---------------------------------------------------------------------------- logging
def test_basic_config_is_called_in_one_place_only():
    calls = [f"{path.relative_to(ROOT)}:{line}"
             for path in _python_files(ROOT, SOURCE_FOLDERS + ("tests",))
             for line in [n.lineno for n in ast.walk(_tree(path))
                          if isinstance(n, ast.Call) and "basicConfig" in ast.unparse(n.func)]]
    assert [c.split(":")[0] for c in calls] == ["ddsp_models/cli_logging.py"], calls


def _is_main_guard(node) -> bool:
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test)


def _imports_the_project(tree) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] in ("ddsp_models", "pipelines")
                                                for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("ddsp_models", "pipelines"):
            return True
    return False


def test_every_command_line_sets_up_logging_through_cli_logging():
    """A module run as a program (``if __name__ == "__main__"``) that uses the project calls
    `configure_cli_logging` (stages: `flow_utils.parse_stage_args`, which calls it)."""
    programs, missing = [], []
    for path in _python_files(ROOT, SOURCE_FOLDERS):
        rel = str(path.relative_to(ROOT))
        tree = _tree(path)
        if rel in ORIGINAL_INTERPRETER_SCRIPTS or not any(_is_main_guard(n) for n in tree.body) \
                or not _imports_the_project(tree):
            continue
        programs.append(rel)
        if not _called_names(tree) & {"configure_cli_logging", "parse_stage_args"}:
            missing.append(rel)
    assert {"ddsp_models/training/run.py", "ddsp_models/training/inference.py", "ddsp_models/training/export.py",
            "ddsp_models/compat/__main__.py", "pipelines/train.py", "benchmarks/convergence.py"} <= set(programs)
    assert not missing, f"set up logging with ddsp_models.cli_logging.configure_cli_logging: {missing}"


def test_cli_logging_format_quiet_loggers_and_light_import():
    code = ("import sys, logging\n"
            "from ddsp_models.cli_logging import configure_cli_logging\n"
            "assert not {'prefect', 'tensorflow'} & set(sys.modules), 'cli_logging imports heavy modules'\n"
            "configure_cli_logging('WARNING')\n"
            "logging.getLogger('ddsp_models.x').info('hidden info')\n"
            "logging.getLogger('ddsp_models.x').warning('shown warning')\n"
            "logging.getLogger('httpx').warning('quiet httpx')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(" ddsp_models.x WARNING shown warning"), lines


# ---------------------------------------------------------------------------- private names
def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(root: pathlib.Path, path: pathlib.Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_uses(root: pathlib.Path, folders) -> list:
    """``file:line: what`` for each import or attribute access, in the modules under
    `folders` of `root`, of a private (``_name``, not dunder) name of another of these
    modules. Knows `import a.b [as c]`, `from a.b import c [as d]` (also relative) and, for
    scripts, a bare `import sibling` of a file next to them."""
    root = pathlib.Path(root)
    modules = {_module_name(root, path): path for path in _python_files(root, folders)}
    found = []
    for path in _python_files(root, folders):
        current, tree = _module_name(root, path), _tree(path)
        package = current if path.name == "__init__.py" else current.rpartition(".")[0]
        script = not (path.parent / "__init__.py").exists()
        aliases = {}  # local (dotted) name -> project module
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    sibling = f"{package}.{alias.name}" if script else None  # its folder is on sys.path
                    target = alias.name if alias.name in modules else sibling if sibling in modules else None
                    if target:
                        aliases[alias.asname or alias.name] = target
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                if base not in modules and not any(m.startswith(base + ".") for m in modules):
                    continue
                for alias in node.names:
                    if f"{base}.{alias.name}" in modules:
                        aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
                    if _is_private(alias.name) and base != current:
                        found.append(f"{path.relative_to(root)}:{node.lineno}: from {base} import {alias.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                owner = ast.unparse(node.value)
                if aliases.get(owner, current) != current:
                    found.append(f"{path.relative_to(root)}:{node.lineno}: {owner}.{node.attr} "
                                 f"({aliases[owner]})")
    return found


def test_no_module_uses_another_modules_private_names():
    found = private_uses(ROOT, SOURCE_FOLDERS)
    assert not found, "make these public (or move them to their user):\n" + "\n".join(found)


def test_the_private_use_finder_flags_imports_and_attributes(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "lib.py").write_text("_hidden = 1\n__version__ = '1'\n\n\ndef _helper():\n    return _hidden\n")
    (package / "sub" / "user.py").write_text(
        "from pkg import lib\n"
        "from pkg.lib import _helper\n"
        "from ..lib import __version__\n"
        "import pkg.lib as other\n"
        "value = lib._hidden + other._hidden + _helper() + len(lib.__version__)\n"
        "own = str._private_looking_but_not_ours if False else 0\n")
    found = private_uses(tmp_path, ["pkg"])
    assert found == ["pkg/sub/user.py:2: from pkg.lib import _helper",
                     "pkg/sub/user.py:5: lib._hidden (pkg.lib)",
                     "pkg/sub/user.py:5: other._hidden (pkg.lib)"], found
