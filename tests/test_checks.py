"""Argument checks (ddsp_models/checks.py): the value back, or an error naming it."""
import numpy as np
import pytest

from ddsp_models.checks import non_negative_int, positive_float, positive_int


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
