"""Shared test data: a fake NSynth TFDS dataset (NSynth's exact features, made-up values)."""
import numpy as np
import tensorflow_datasets as tfds


def write_fake_nsynth(data_dir, n=3):
    """A 'nsynth/gansynth_subset.f0_and_loudness:2.3.3' with NSynth's exact features and
    n tiny made-up examples per split, prepared into data_dir."""
    real = tfds.builder("nsynth/gansynth_subset.f0_and_loudness:2.3.3", data_dir=str(data_dir))
    real_features = real.info.features
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        rows.append({
            "id": f"note_{i}", "audio": rng.uniform(-1, 1, 64000).astype(np.float32),
            "pitch": 60 + i, "velocity": 100,
            "instrument": {"family": 1, "label": 7 + i, "source": 0},
            "qualities": {q: False for q in real_features["qualities"].keys()},
            "f0": {"hz": np.full(1000, 261.6 * (i + 1), np.float32),
                   "confidence": rng.uniform(0, 1, 1000).astype(np.float32),
                   "midi": np.full(1000, 60.0 + i, np.float32)},
            "loudness": {"db": rng.uniform(-60, 0, 1000).astype(np.float32)},
        })

    with tfds.core.registered.skip_registration():
        class FakeNsynth(tfds.core.GeneratorBasedBuilder):
            name = "nsynth"
            VERSION = tfds.core.Version("2.3.3")
            BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="gansynth_subset.f0_and_loudness")]

            def _info(self):
                return tfds.core.DatasetInfo(builder=self, features=real_features)

            def _split_generators(self, dl_manager):
                return {"train": self._generate_examples(), "valid": self._generate_examples()}

            def _generate_examples(self):
                for row in rows:
                    yield row["id"], row

    FakeNsynth(config="gansynth_subset.f0_and_loudness", data_dir=str(data_dir)) \
        .download_and_prepare()
    return rows
