"""Prints, per recorded case, the max abs difference between ddsp_models and the original DDSP.

    .venv/bin/python scripts/golden/compare.py [substring ...]

Reads tests/data/golden (see record_upstream_dsp.py); never imports the original.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import golden_replay  # noqa: E402


def main(filters):
    cases = golden_replay.load_manifest()["cases"]
    print(f"{'case':48s} {'target':45s} {'max |ours - original|':>22s} {'max |original|':>15s}")
    for entry in cases:
        if filters and not any(f in entry["id"] or f in entry["target"] for f in filters):
            continue
        expected = golden_replay.expected_outputs(entry)
        try:
            actual = golden_replay.run_case(entry)
        except Exception as error:  # noqa: BLE001 - a report, not a test
            print(f"{entry['id']:48s} {entry['target']:45s} ERROR {type(error).__name__}: {str(error)[:120]}")
            continue
        worst, scale, problem = 0.0, 0.0, ""
        for name, value in expected.items():
            if name not in actual:
                problem = f"missing output {name}"
                break
            try:
                worst = max(worst, golden_replay.max_abs_difference(value, actual[name]))
            except AssertionError as error:
                problem = f"{name}: {error}"
                break
            if value.size and value.dtype.kind in "fc":
                scale = max(scale, float(abs(value[~(value != value)]).max()) if value.size else 0.0)
        result = problem or f"{worst:22.3g} {scale:15.3g}"
        print(f"{entry['id']:48s} {entry['target']:45s} {result}")


if __name__ == "__main__":
    main(sys.argv[1:])
