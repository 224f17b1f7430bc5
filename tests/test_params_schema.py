"""One schema and one loader for params.yaml (ddsp_models/training/params.py): the
repository's params.yaml is the defaults, every stage checks every key before it works;
gin binding errors name the binding."""
import os

import pytest
import yaml

from ddsp_models.training.params import DEFAULTS_FILE, SCHEMA, load_params

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, message", [
    ("train:\n  learning_rate: fast\n",
     r"train\.learning_rate = 'fast': expected a number > 0 and <= 1\.0"),
    ("train:\n  ae:\n    steps: 2.5\n", r"train\.ae\.steps = 2\.5: expected an integer >= 1"),
    ("train:\n  strategy: tpu\n",
     r"train\.strategy = 'tpu': expected one of \['default', 'mirrored', 'multi_worker'\]"),
    ("train:\n  seed: -1\n", r"train\.seed = -1: expected an integer >= 0"),
    ("train:\n  midiae:\n    warm_start: vae\n", r"train\.midiae\.warm_start = 'vae'"),
    ("data:\n  crepe_capacity: huge\n", r"data\.crepe_capacity = 'huge': expected one of"),
    ("data:\n  sample_rate: 16000.5\n", r"data\.sample_rate = 16000\.5"),
    ("data:\n  silence_db: 3\n", r"data\.silence_db = 3: expected a number <= 0"),
    ("data:\n  crepe_viterbi: 'yes'\n", r"data\.crepe_viterbi = 'yes': expected true or false"),
    ("data:\n  splits: {train: 0.9, valid: 0.2}\n", r"data\.splits = .*summing to 1"),
    ("evaluate:\n  min_f0_confidence: 1.5\n",
     r"evaluate\.min_f0_confidence = 1\.5: expected a number >= 0\.0 and <= 1\.0"),
    ("evaluate:\n  runs: [ae, vae]\n", r"evaluate\.runs = \['ae', 'vae'\]: expected a list"),
    ("sample:\n  octave_shift: 0.5\n", r"sample\.octave_shift = 0\.5: expected one of \['auto'\]"),
    ("sample:\n  split: holdout\n", r"sample\.split = 'holdout': expected one of \['train'"),
    ("train:\n  ae:\n    stepz: 3\n", r"unknown param train\.ae\.stepz"),
    ("data:\n  sample_rat: 8000\n", r"unknown param data\.sample_rat; known: \['batch_size'"),
    ("evaluate:\n  metrics_dir: out\n", r"unknown param evaluate\.metrics_dir"),
    ("trian:\n  batch_size: 3\n", r"unknown section\(s\) \['trian'\]"),
])
def test_a_bad_value_names_the_file_the_key_path_and_what_is_allowed(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as raised:
        load_params(path)
    assert str(raised.value).startswith(path) or path in str(raised.value)


def test_the_repository_params_are_the_defaults_and_cover_the_schema_exactly():
    def keys(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict) and key != "splits":
                yield from keys(value, f"{prefix}{key}.")
            else:
                yield prefix + key

    assert os.path.samefile(DEFAULTS_FILE, os.path.join(REPO, "params.yaml"))
    with open(DEFAULTS_FILE) as f:
        committed = yaml.safe_load(f)
    assert set(keys(committed)) == set(keys(SCHEMA))
    assert load_params(None) == committed == load_params(DEFAULTS_FILE)


def test_a_params_file_is_merged_over_the_defaults_key_by_key(tmp_path):
    with open(DEFAULTS_FILE) as f:
        committed = yaml.safe_load(f)
    path = write(tmp_path, "train:\n  ae:\n    steps: 7\ndata:\n  splits: {train: 1.0}\n")
    params = load_params(path, {"train": {"midiae": {"rnn_channels": 3}}})
    assert params["train"]["ae"]["steps"] == 7
    assert params["train"]["midiae"]["rnn_channels"] == 3
    assert params["data"]["splits"] == {"train": 1.0}  # a mapping value: replaced whole
    params["train"]["ae"]["steps"] = committed["train"]["ae"]["steps"]
    params["train"]["midiae"]["rnn_channels"] = committed["train"]["midiae"]["rnn_channels"]
    params["data"]["splits"] = committed["data"]["splits"]
    assert params == committed  # everything else from the repository's params.yaml


def test_without_the_defaults_file_a_params_file_must_be_complete(tmp_path):
    path = write(tmp_path, "train:\n  ae:\n    steps: 7\n")
    with pytest.raises(ValueError, match=r"params.yaml: missing param data \(expected a mapping"):
        load_params(path, defaults=str(tmp_path / "none.yaml"))
    with open(DEFAULTS_FILE) as f:
        complete = yaml.safe_load(f)
    del complete["train"]["inverse"]["mode"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(complete))
    with pytest.raises(ValueError, match=r"missing param train\.inverse\.mode \(expected one of"):
        load_params(path, defaults=None)
    with pytest.raises(ValueError, match="no params file given and no defaults file"):
        load_params(None, defaults=None)


def test_a_data_stage_refuses_a_bad_key_of_any_section_before_doing_any_work(tmp_path):
    from pipelines import prepare

    path = write(tmp_path, "data:\n  n_melodies: 1\nsample:\n  n_clips: 0\n")
    out = tmp_path / "clips"
    with pytest.raises(ValueError, match=r"sample\.n_clips = 0: expected an integer >= 1"):
        prepare.main(["--params", path, "--out-dir", str(out)])
    assert not out.exists()


def test_the_dataset_stage_checks_the_params_file_first(tmp_path):
    from pipelines import dataset

    path = write(tmp_path, "train:\n  strategy: everywhere\n")
    out = tmp_path / "tfds"
    with pytest.raises(ValueError, match=r"train\.strategy = 'everywhere': expected one of"):
        dataset.main(["--params", path, "--features-dir", str(tmp_path / "none"),
                      "--out-dir", str(out)])
    assert not out.exists()


def test_a_gin_binding_error_names_the_binding():
    from ddsp_models.training.config import parse_gin

    with pytest.raises(ValueError, match=r"gin binding 'Harmonicz\.n_samples = 3'.*Harmonicz"):
        parse_gin([], ["Harmonic.sample_rate = 16000", "Harmonicz.n_samples = 3"])
    with pytest.raises(ValueError, match=r"gin binding 'Harmonic\.n_samples = \('"):
        parse_gin([], ["Harmonic.n_samples = ("])
