"""pipelines/ holds DVC stage modules only, and no stage imports another: what two stages
share lives in the library (ddsp_models)."""
import ast
import os

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINES = os.path.join(REPO, "pipelines")


def _modules():
    return sorted(name for name in os.listdir(PIPELINES) if name.endswith(".py"))


def _imported(path):
    """Module names a file imports (relative imports as '.<module>')."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                yield "." * node.level + (node.module or "")
            else:
                yield node.module


def test_no_module_in_pipelines_imports_another_pipelines_module():
    offenders = {name: [m for m in _imported(os.path.join(PIPELINES, name))
                        if m == "pipelines" or m.startswith(("pipelines.", "."))]
                 for name in _modules()}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_pipelines_holds_the_dvc_stages_and_nothing_else():
    with open(os.path.join(REPO, "dvc.yaml"), encoding="utf-8") as f:
        stages = yaml.safe_load(f)["stages"]
    run_by_dvc = {stage["cmd"].split()[2] for stage in stages.values()}
    assert not [name for name in os.listdir(PIPELINES)
                if os.path.isdir(os.path.join(PIPELINES, name)) and name != "__pycache__"]
    assert {f"pipelines.{name[:-3]}" for name in _modules() if name != "__init__.py"} \
        == run_by_dvc


def test_every_stage_command_gives_its_params_and_folders_as_flags():
    with open(os.path.join(REPO, "dvc.yaml"), encoding="utf-8") as f:
        stages = yaml.safe_load(f)["stages"]
    for name, stage in stages.items():
        words = stage["cmd"].split()
        assert words[:4] == ["python", "-m", words[2], "--params"] and words[4] == "params.yaml"
        flags = words[5::2]
        assert all(flag.startswith("--") for flag in flags), (name, flags)
        assert "--out-dir" in flags or name.startswith("train_"), (name, flags)
