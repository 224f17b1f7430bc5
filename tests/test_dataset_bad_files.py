"""The dataset stage skips unreadable, key-less, wrong-length and NaN feature files, names
each with its reason in report.json, and builds the rest."""
import json
import os

import numpy as np

from pipeline_fixtures import CLIP_SECONDS, FRAME_RATE, SAMPLE_RATE, clip_features


def test_bad_feature_files_are_skipped_and_named(tmp_path):
    from ddsp_models.training.data import PreparedTfdsProvider
    from pipelines.dataset import build_dataset

    features = tmp_path / "features"
    good = {"train": [57, 60, 62], "valid": [64], "test": [65]}
    for split, pitches in good.items():
        os.makedirs(features / split)
        for pitch in pitches:
            np.savez(features / split / f"tone{pitch}.npz", id=np.array(f"tone{pitch}"),
                     **clip_features(pitch, with_midi=False))
    (features / "train" / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip" * 10)
    keyless = clip_features(67, with_midi=False)
    del keyless["f0_hz"]
    np.savez(features / "train" / "keyless.npz", **keyless)
    short = clip_features(69, with_midi=False)
    short["audio"] = short["audio"][:4000]
    np.savez(features / "train" / "short.npz", **short)
    nan = clip_features(71, with_midi=False)
    nan["loudness_db"] = np.array(nan["loudness_db"])
    nan["loudness_db"][5] = np.nan
    np.savez(features / "test" / "nan.npz", **nan)
    with open(features / "meta.json", "w") as f:
        json.dump({"sample_rate": SAMPLE_RATE, "frame_rate": FRAME_RATE,
                   "clip_seconds": CLIP_SECONDS, "crepe_capacity": "tiny",
                   "crepe_viterbi": True}, f)

    out = tmp_path / "tfds"
    build_dataset(str(features), str(out))
    with open(out / "report.json") as f:
        report = json.load(f)
    reasons = {s["file"]: s["error"] for s in report["skipped_files"]}
    assert set(reasons) == {"train/corrupt.npz", "train/keyless.npz", "train/short.npz",
                            "test/nan.npz"}
    assert "f0_hz" in reasons["train/keyless.npz"]
    assert "(4000,)" in reasons["train/short.npz"] and "(8000,)" in reasons["train/short.npz"]
    assert "loudness_db" in reasons["test/nan.npz"] and "NaN" in reasons["test/nan.npz"]
    assert reasons["train/corrupt.npz"]
    assert report["examples_per_split"] == {"train": 3, "valid": 1, "test": 1}
    batch = next(iter(PreparedTfdsProvider(data_dir=str(out), split="train").get_batch(
        3, shuffle=False, repeats=1)))
    ids = sorted(x.decode() for x in batch["id"].numpy())
    assert ids == ["tone57", "tone60", "tone62"]
    np.testing.assert_allclose(batch["f0_hz"].numpy()[:, 0], sorted(
        440.0 * 2 ** ((p - 69) / 12) for p in (57, 60, 62)), rtol=1e-5)
