"""Argument checks (ddsp_models/checks.py): the value back, or an error naming it; and no
inline copy of them elsewhere in the library or the stages."""
import ast
import pathlib
import re

import numpy as np
import pytest

from ddsp_models.checks import non_negative_float, non_negative_int, positive_float, positive_int

ROOT = pathlib.Path(__file__).resolve().parents[1]
# What an inline copy of these checks says (the helpers' own wording is "must be an integer >= 1",
# "must be a finite number > 0", ...): "`n` must be a positive integer", "x must be >= 1", ...
INLINE_CHECK = re.compile(r"must be (a |an )?(positive|non-negative)\b|must be (None or )?(>= ?[01]|> ?0)(?![\d.])"
                          r"|expected (a )?positive (int|integer|number|rate)", re.IGNORECASE)


def test_positive_int_returns_the_int_and_names_a_bad_argument():
    assert positive_int("chunk_steps", 3) == 3
    assert positive_int("n", np.int64(7)) == 7 and type(positive_int("n", np.int64(7))) is int
    for bad in (0, -2, 2.0, True, "3", None):
        with pytest.raises(ValueError, match=rf"chunk_steps must be an integer >= 1, got {bad!r}"):
            positive_int("chunk_steps", bad)


def test_non_negative_int_accepts_zero():
    assert non_negative_int("retries", 0) == 0
    with pytest.raises(ValueError, match="retries must be an integer >= 0, got -1"):
        non_negative_int("retries", -1)


def test_positive_float_refuses_zero_negative_and_non_finite():
    assert positive_float("seconds", 2) == 2.0 and positive_float("seconds", 0.5) == 0.5
    for bad in (0, -0.1, float("inf"), float("nan"), False, "1"):
        with pytest.raises(ValueError, match="seconds must be a finite number > 0"):
            positive_float("seconds", bad)


def test_non_negative_float_accepts_zero_and_refuses_negative_or_non_finite():
    assert non_negative_float("weight", 0) == 0.0 and non_negative_float("weight", np.float32(1.5)) == 1.5
    for bad in (-1e-3, float("inf"), float("nan"), True, None):
        with pytest.raises(ValueError, match=r"weight must be a finite number >= 0"):
            non_negative_float("weight", bad)


def _raise_messages(path: pathlib.Path):
    """(line, literal text of the message) of each `raise ValueError/TypeError(...)` in `path`."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                and getattr(node.exc.func, "id", None) in ("ValueError", "TypeError"):
            text = "".join(n.value for arg in node.exc.args for n in ast.walk(arg)
                           if isinstance(n, ast.Constant) and isinstance(n.value, str))
            yield node.lineno, text


def inline_positive_checks(roots) -> list:
    """`file:line: message` of every raise outside checks.py that words a positive /
    non-negative number check itself."""
    found = []
    for root in roots:
        for path in sorted(pathlib.Path(root).rglob("*.py")):
            if path.name == "checks.py" and path.parent.name == "ddsp_models":
                continue
            for line, text in _raise_messages(path):
                if INLINE_CHECK.search(text):
                    found.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}: {text}")
    return found


def test_no_inline_positive_checks_in_the_library_or_the_stages():
    found = inline_positive_checks([ROOT / "ddsp_models", ROOT / "pipelines"])
    assert not found, "use ddsp_models.checks (positive_int, positive_float, ...) instead of:\n" + "\n".join(found)


def test_the_inline_check_finder_flags_a_copy(tmp_path):
    (tmp_path / "m.py").write_text(
        "def f(n, x, ok):\n"
        "    if n < 1:\n"
        "        raise ValueError(f'`n` must be a positive integer, got {n}')\n"
        "    if x <= 0:\n"
        "        raise ValueError(f'x: must be > 0, got {x}')\n"
        "    if ok not in (0, 1):\n"
        "        raise ValueError('ok must be 0 or 1')\n")
    assert [item.split(": ", 1)[0].rsplit(":", 1)[1] for item in inline_positive_checks([tmp_path])] == ["3", "5"]
