"""The original DDSP 3.7.0's public training API exists here under the same names, with its
behaviour, and code written against ``import ddsp`` runs after `install_ddsp_alias`.

tests/data/upstream_api/ was written by scripts/golden/record_upstream_api.py in the
original's own environment: every public name (and signature) of its training modules, and
what some of its functions return for fixed inputs (behaviour.npz). deviations.json lists,
with reasons, what is absent or has other arguments here.
"""
import inspect
import json
import os
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.compat.alias import ALIASES, install_ddsp_alias, uninstall_ddsp_alias
from ddsp_models.training import nn, postprocessing, preprocessing, train_util, trainer

DATA = os.path.join(os.path.dirname(__file__), "data", "upstream_api")
with open(os.path.join(DATA, "training_names.json"), encoding="utf-8") as _f:
    UPSTREAM = json.load(_f)["modules"]
with open(os.path.join(DATA, "deviations.json"), encoding="utf-8") as _f:
    DEVIATIONS = json.load(_f)
BEHAVIOUR = dict(np.load(os.path.join(DATA, "behaviour.npz")))
KERAS_BASE_ARGS = {"trainable", "name", "dtype", "dynamic", "autocast", "activity_regularizer"}


def our_module(name):
    import importlib

    for candidate in ALIASES[f"ddsp.training.{name}"]:
        try:
            return importlib.import_module(candidate)
        except ModuleNotFoundError:
            continue
    return None


def test_every_public_name_of_the_original_exists_or_is_documented():
    documented = {**DEVIATIONS["absent"], **DEVIATIONS["pending"]}
    assert all(isinstance(r, str) and len(r) > 10 for r in documented.values())
    missing, stale, total = [], [], 0
    for module_name, names in UPSTREAM.items():
        module = our_module(module_name)
        for name in names:
            total += 1
            key = f"{module_name}.{name}"
            present = module is not None and hasattr(module, name)
            if not present and key not in documented:
                missing.append(key)
            if present and key in documented:
                stale.append(key)
    assert total == 114 and not missing, missing
    assert not stale, f"deviations.json lists as absent/pending names that exist: {stale}"
    unknown = [k for k in documented if k.split(".")[1] not in UPSTREAM.get(k.split(".")[0], {})]
    assert not unknown, f"deviations.json names that the original does not have: {unknown}"


def test_constants_have_the_original_values():
    checked = 0
    for module_name, names in UPSTREAM.items():
        module = our_module(module_name)
        for name, info in names.items():
            if info["kind"] == "constant" and module is not None and hasattr(module, name):
                assert getattr(module, name) == pytest.approx(info["value"]), \
                    f"{module_name}.{name}"
                checked += 1
    assert checked >= 4  # F0_RANGE, DB_RANGE, CREPE_SAMPLE_RATE, CREPE_FRAME_SIZE


def _parameters(value):
    target = value.__init__ if inspect.isclass(value) else value
    params = inspect.signature(target).parameters.items()
    return [k for k, p in params if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def signature_deviates(ours: list, theirs: list) -> bool:
    """True unless the original's parameters (Keras base arguments aside) come first in
    ours, in the original's order (this package's own parameters may follow them)."""
    ours = [p for p in ours if p not in KERAS_BASE_ARGS]
    theirs = [p for p in theirs if p not in KERAS_BASE_ARGS]
    return ours[:len(theirs)] != theirs


def test_signature_rule():
    assert not signature_deviates(["a", "b", "extra", "name"], ["a", "b", "name"])
    assert signature_deviates(["extra", "a", "b"], ["a", "b"])
    assert signature_deviates(["b", "a"], ["a", "b"])
    assert signature_deviates(["a"], ["a", "b"])


def test_signatures_take_the_original_arguments_first_or_are_documented():
    undocumented, stale = [], []
    documented = DEVIATIONS["signatures"]
    assert all(isinstance(r, str) and len(r) > 10 for r in documented.values())
    for module_name, names in UPSTREAM.items():
        module = our_module(module_name)
        for name, info in names.items():
            if info["kind"] == "constant" or info.get("parameters") is None or module is None \
                    or not hasattr(module, name):
                continue
            key = f"{module_name}.{name}"
            deviates = signature_deviates(_parameters(getattr(module, name)), info["parameters"])
            if deviates and key not in documented:
                undocumented.append(f"{key}: original {info['parameters']}, "
                                    f"ours {_parameters(getattr(module, name))}")
            if not deviates and key in documented:
                stale.append(key)
    assert not undocumented, undocumented
    assert not stale, f"deviations.json lists signatures that no longer deviate: {stale}"


# ------------------------------------------------------------------- alias package
@pytest.fixture
def ddsp_alias():
    installed = install_ddsp_alias()
    yield installed
    uninstall_ddsp_alias()


def test_code_written_for_the_original_runs_with_the_alias(ddsp_alias):
    assert ddsp_alias["ddsp.training.trainers"] == "ddsp_models.training.trainer"
    import ddsp
    import ddsp.training
    from ddsp.training import data, models, trainers  # noqa: F401
    from ddsp.training import nn as original_nn

    assert ddsp.core.midi_to_hz(69.0).numpy() == pytest.approx(440.0)
    assert trainers.Trainer is trainer.Trainer and original_nn.DictLayer is nn.DictLayer
    harmonic = ddsp.synths.Harmonic(n_samples=1600, sample_rate=16000)
    audio = harmonic(tf.fill([1, 10, 1], 0.5), tf.ones([1, 10, 3]), tf.fill([1, 10, 1], 250.0))
    spectrum = np.abs(np.fft.rfft(audio.numpy()[0]))  # 10 Hz bins
    assert np.argmax(spectrum) in (24, 25, 26)  # 250 Hz
    gin.parse_config("""
import ddsp
import ddsp.training
get_model.model = @models.Autoencoder()
Autoencoder.preprocessor = @preprocessing.F0LoudnessPreprocessor()
F0LoudnessPreprocessor.time_steps = 10
F0LoudnessPreprocessor.compute_loudness = False
Autoencoder.decoder = @decoders.RnnFcDecoder()
RnnFcDecoder.rnn_channels = 8
RnnFcDecoder.ch = 8
RnnFcDecoder.layers_per_stack = 1
RnnFcDecoder.input_keys = ('ld_scaled', 'f0_scaled')
RnnFcDecoder.output_splits = (('amps', 1), ('harmonic_distribution', 4))
Autoencoder.processor_group = @processors.ProcessorGroup()
ProcessorGroup.dag = [(@synths.Harmonic(), ['amps', 'harmonic_distribution', 'f0_hz'])]
Harmonic.n_samples = 1600
""")
    model = ddsp.training.models.get_model()
    assert isinstance(model, ddsp.training.models.Autoencoder)
    outputs = model({"f0_hz": tf.fill([1, 10], 440.0), "loudness_db": tf.fill([1, 10], -20.0)})
    audio = model.get_audio_from_outputs(outputs).numpy()
    assert audio.shape == (1, 1600) and np.abs(audio).max() > 1e-4


def test_alias_refuses_to_shadow_another_ddsp(monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "ddsp", types.ModuleType("ddsp"))
    with pytest.raises(ValueError, match="already imported"):
        install_ddsp_alias()


# ------------------------------------------------------------ behaviour: note masks
def test_note_masks_match_the_original():
    b = BEHAVIOUR
    mask = nn.get_note_mask(b["q_pitch"], max_regions=6)
    np.testing.assert_array_equal(mask.numpy(), b["note_mask"])
    np.testing.assert_array_equal(nn.get_note_mask(b["q_pitch"], 6, note_on_only=False).numpy(),
                                  b["note_mask_all"])
    np.testing.assert_array_equal(
        nn.get_note_mask_from_onset(b["q_pitch"], b["onset"], max_regions=6).numpy(),
        b["note_mask_from_onset"])
    mean, std = nn.get_note_moments(b["x"], mask)
    np.testing.assert_allclose(mean.numpy(), b["note_mean"], atol=1e-6)
    np.testing.assert_allclose(std.numpy(), b["note_std"], atol=1e-5)
    pooled_mean, pooled_std = nn.pool_over_notes(b["x"], mask)
    np.testing.assert_allclose(pooled_mean.numpy(), b["pooled_mean"], atol=1e-6)
    np.testing.assert_allclose(pooled_std.numpy(), b["pooled_std"], atol=1e-5)
    lengths = nn.get_note_lengths(mask)
    pitches = nn.get_note_moments(b["q_pitch"], mask, return_std=False)
    np.testing.assert_array_equal(nn.get_short_note_loss_mask(mask, lengths, pitches, 3).numpy(),
                                  b["short_note_mask"])


def test_resampling_and_quantisation_match_the_original():
    b = BEHAVIOUR
    for kind in ("down", "up"):
        for fix in ("pad", "trim"):
            np.testing.assert_array_equal(nn.polyphase_resample(b["y"], 2, kind, fix).numpy(),
                                          b[f"polyphase_{kind}_{fix}"], err_msg=f"{kind} {fix}")
    x = tf.constant(b["x"] * 3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        rounded = nn.straight_through_int_quantization(x)
    np.testing.assert_array_equal(rounded.numpy(), b["int_quantized"])
    np.testing.assert_array_equal(tape.gradient(rounded, x).numpy(), np.ones_like(b["x"]))


@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_quantile_transformer_matches_the_original(distribution):
    b = BEHAVIOUR
    transformer = postprocessing.QuantileTransformer(n_quantiles=100,
                                                     output_distribution=distribution)
    transformer.fit(b["qt_data"])
    np.testing.assert_allclose(transformer.quantiles_, b[f"qt_{distribution}_quantiles"],
                               atol=1e-12)
    np.testing.assert_allclose(transformer.transform(b["qt_points"]),
                               b[f"qt_{distribution}_transform"], atol=1e-9)
    grid = (np.array([[0.0, 0.3], [0.5, 0.9], [1.0, 0.05]]) if distribution == "uniform"
            else np.array([[-6.0, -0.5], [0.0, 1.2], [6.0, 0.1]]))
    np.testing.assert_allclose(transformer.inverse_transform(grid), b[f"qt_{distribution}_inverse"],
                               atol=1e-9)


def test_fit_quantile_transform_maps_one_distribution_onto_another():
    rng = np.random.RandomState(3)
    quiet, loud = rng.normal(-40, 3, (2, 200)), rng.normal(-20, 6, (2, 200))
    mask = np.ones_like(quiet, bool)
    target = postprocessing.fit_quantile_transform(loud, mask)
    _, remapped = postprocessing.fit_quantile_transform(quiet, mask, inv_quantile=target)
    assert remapped.shape == (400, 1)
    assert np.mean(remapped) == pytest.approx(np.mean(loud), abs=0.5)
    assert np.std(remapped) == pytest.approx(np.std(loud), rel=0.1)


def test_dataset_statistics_match_the_original_pickle():
    from ddsp_models import compat
    from ddsp_models.training.data import DataProvider

    folder = os.path.join(os.path.dirname(__file__), "data", "golden", "upstream_models")
    examples = dict(np.load(os.path.join(folder, "statistics_examples.npz")))

    class Provider(DataProvider):
        def get_dataset(self, shuffle=True):
            return tf.data.Dataset.from_tensor_slices(examples)

    ours = postprocessing.compute_dataset_statistics(Provider(16000, 250), power_frame_rate=250)
    theirs = compat.load_dataset_statistics(os.path.join(folder, "ae", "dataset_statistics.pkl"))
    for key, value in theirs.items():
        if key == "quantile_transform":
            np.testing.assert_allclose(ours[key].quantiles_[:, 0], value["quantiles"], atol=1e-4)
        else:  # power: needs issue-12a's compute_power (centred frames, the original's)
            assert ours[key] == pytest.approx(value, rel=1e-5, abs=1e-4), key


# ---------------------------------------------------------------- small functions
def test_at_least_3d_and_ensure_4d():
    assert preprocessing.at_least_3d(tf.constant(2.0)).shape == (1, 1, 1)
    assert preprocessing.at_least_3d(tf.zeros([5])).shape == (1, 5, 1)
    assert preprocessing.at_least_3d(tf.zeros([2, 5])).shape == (2, 5, 1)
    assert preprocessing.DB_RANGE == 80.0
    x = tf.reshape(tf.range(6.0), [2, 3])
    assert nn.ensure_4d(x).shape == (2, 1, 1, 3)
    np.testing.assert_array_equal(nn.inv_ensure_4d(nn.ensure_4d(x), 2).numpy(), x.numpy())


def test_train_util_paths(tmp_path):
    with pytest.raises(FileNotFoundError):
        train_util.get_latest_file(tmp_path)
    for step in (2, 10, 7):
        (tmp_path / f"operative_config-{step}.gin").write_text("")
    assert train_util.get_latest_operative_config(tmp_path).endswith("operative_config-10.gin")
    assert train_util.get_latest_operative_config(tmp_path / "ckpt-7").endswith("-10.gin")
    with pytest.raises(FileNotFoundError):
        train_util.get_latest_checkpoint(tmp_path)
    checkpoint = tf.train.Checkpoint(v=tf.Variable(1.0))
    for step in (3, 12):
        checkpoint.write(str(tmp_path / f"ckpt-{step}"))
    assert train_util.get_latest_checkpoint(tmp_path).endswith("ckpt-12")
    assert train_util.expand_path("~/x") == os.path.expanduser("~/x")
    gin.parse_config("F0LoudnessPreprocessor.time_steps = 7")
    writer = tf.summary.create_file_writer(str(tmp_path / "summaries"))
    path = train_util.write_gin_config(writer, str(tmp_path / "run"), 5)
    assert path.endswith("operative_config-5.gin") and os.path.isfile(path)
    assert train_util.train is not None and train_util.get_strategy is trainer.get_strategy


def test_get_trainer_class_is_gin_configurable():
    assert trainer.get_trainer_class() is trainer.Trainer

    class MyTrainer(trainer.Trainer):
        pass

    gin.bind_parameter("get_trainer_class.trainer_class", MyTrainer)
    assert trainer.get_trainer_class() is MyTrainer
