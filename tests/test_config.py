"""gin loading: the packaged configs, original-DDSP configs (``import ddsp``), operative configs."""
import os
from pathlib import Path

import gin
import pytest

from ddsp_models.training import config, models
from ddsp_models.training.trainer import Trainer

REPO_CONFIGS = [
    "models/ae.gin",
    "models/solo_instrument.gin",
    "optimization/base.gin",
    "papers/iclr2020/nsynth_ae.gin",
    "papers/iclr2020/solo_instrument.gin",
    "papers/iclr2020/tiny_instrument.gin",
]


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def test_translate_line_strips_original_package_prefixes():
    line = "get_model.model = @ddsp.training.models.Autoencoder()"
    assert config.translate_line(line) == "get_model.model = @models.Autoencoder()"
    assert config.translate_line("ddsp.synths.Harmonic.n_samples = 64000") == \
        "synths.Harmonic.n_samples = 64000"
    assert config.translate_line("ddsp.training.trainers.Trainer.learning_rate = 1e-3") == \
        "training.Trainer.learning_rate = 1e-3"
    assert config.translate_line("ddsp.training.train_util.train.num_steps = 5") == \
        "training.train.num_steps = 5"
    # Scoped bindings keep their scope.
    assert config.translate_line("eval/ddsp.training.models.Autoencoder.encoder = None") == \
        "eval/models.Autoencoder.encoder = None"


def test_translate_line_leaves_strings_comments_and_other_names_alone():
    line = "TFRecordProvider.file_pattern = '/data/ddsp.training.tfrecord'  # ddsp.x"
    assert config.translate_line(line) == line
    assert config.translate_line('X.name = "ddsp.synths"') == 'X.name = "ddsp.synths"'
    assert config.translate_line("my_ddsp.synths.Harmonic.x = 1") == "my_ddsp.synths.Harmonic.x = 1"


def test_translate_turns_ddsp_imports_into_this_package():
    text = "import ddsp\nimport ddsp.training\nfrom ddsp.training import models\nX.y = 1\n"
    out = config.translate(text).splitlines()
    imports = [line for line in out if line.startswith("import ")]
    assert "import ddsp_models" in imports
    for module in ("ddsp_models.training.models", "ddsp_models.training.trainer",
                   "ddsp_models.training.train_loop", "ddsp_models.losses"):
        assert f"import {module}" in imports
    assert not any(line.startswith(("import ddsp\n", "import ddsp.", "from ddsp"))
                   for line in out)
    assert out[-1] == "X.y = 1"
    # Original lines survive only as comments, once each.
    assert sum("was: import ddsp.training" in line for line in out) == 1


def test_import_all_registers_model_and_training_configurables():
    names = config.import_all()
    assert "ddsp_models.training.models" in names and "ddsp_models.training.trainer" in names
    gin.parse_config("Trainer.learning_rate = 0.5\ntrain.num_steps = 7\n"
                     "get_model.model = @models.Autoencoder")
    assert gin.query_parameter("Trainer.learning_rate") == 0.5
    assert gin.query_parameter("ddsp_models.training.train.num_steps") == 7


@pytest.mark.parametrize("name", REPO_CONFIGS)
def test_repository_configs_parse(name):
    text = config.parse_gin([name])
    assert "include" not in "".join(line for line in text.splitlines() if not line.startswith("#"))
    if name.startswith(("models/", "papers/")):
        assert gin.query_parameter("get_model.model").selector.endswith("Autoencoder")
        assert gin.query_parameter("Harmonic.scale_fn").selector.endswith("exp_sigmoid")


def bound(name: str):
    """The value bound to `name` with macro references (``%RNN_CHANNELS``: the packaged
    configs declare their knobs as macros), also inside tuples, replaced by their values."""
    return _macro_values(gin.query_parameter(name))


def _macro_values(value):
    if isinstance(value, gin.config.ConfigurableReference) and value.selector == "gin.macro":
        macro = value.scoped_selector.split("/")[0]
        return _macro_values(gin.query_parameter(f"{macro}/macro.value"))
    if isinstance(value, (list, tuple)):
        return type(value)(_macro_values(v) for v in value)
    return value


def test_model_configs_hold_the_original_settings():
    config.parse_gin(["models/ae.gin"])
    assert bound("MfccTimeDistributedRnnEncoder.z_dims") == 16
    assert bound("MfccTimeDistributedRnnEncoder.z_time_steps") == 125
    assert bound("RnnFcDecoder.rnn_channels") == 512
    assert bound("RnnFcDecoder.output_splits") == (
        ("amps", 1), ("harmonic_distribution", 100), ("noise_magnitudes", 65))
    assert bound("SpectralLoss.logmag_weight") == 1.0
    gin.clear_config()
    config.parse_gin(["papers/iclr2020/tiny_instrument.gin"])
    assert bound("Autoencoder.encoder") is None
    assert bound("RnnFcDecoder.input_keys") == ("ld_scaled", "f0_scaled")
    assert dict(bound("RnnFcDecoder.output_splits"))["harmonic_distribution"] == 60
    assert bound("Reverb.reverb_length") == 48000
    assert bound("Reverb.trainable") is True
    assert bound("RnnFcDecoder.rnn_channels") == 256
    assert bound("RnnFcDecoder.layers_per_stack") == 0
    assert bound("learning_rate/macro.value") == 3e-4  # macros of optimization/base.gin
    assert bound("batch_size/macro.value") == 32
    assert bound("Trainer.lr_decay_rate") == 0.98


def test_original_style_config_binds(tmp_path):
    """A config written for the original library, prefixes, imports and all, binds."""
    (tmp_path / "orig.gin").write_text(
        "import ddsp\n"
        "import ddsp.training\n\n"
        "get_model.model = @ddsp.training.models.Autoencoder()\n"
        "ddsp.training.models.Autoencoder.preprocessor = "
        "@ddsp.training.preprocessing.F0LoudnessPreprocessor()\n"
        "F0LoudnessPreprocessor.time_steps = 250\n"
        "Autoencoder.decoder = @ddsp.training.decoders.RnnFcDecoder()\n"
        "RnnFcDecoder.rnn_channels = 8\n"
        "RnnFcDecoder.ch = 8\n"
        "RnnFcDecoder.layers_per_stack = 1\n"
        "RnnFcDecoder.input_keys = ('ld_scaled', 'f0_scaled')\n"
        "RnnFcDecoder.output_splits = (('amps', 1), ('harmonic_distribution', 10))\n"
        "Autoencoder.losses = [@ddsp.losses.SpectralLoss()]\n"
        "Autoencoder.processor_group = @ddsp.processors.ProcessorGroup()\n"
        "ProcessorGroup.dag = [(@ddsp.synths.Harmonic(), "
        "['amps', 'harmonic_distribution', 'f0_hz'])]\n"
        "ddsp.synths.Harmonic.n_samples = 16000\n"
        "Harmonic.scale_fn = @ddsp.core.exp_sigmoid\n"
        "ddsp.training.trainers.Trainer.learning_rate = 0.01\n"
        "ddsp.training.train_util.train.num_steps = 12\n")
    config.parse_gin([str(tmp_path / "orig.gin")])
    model = models.get_model()
    assert isinstance(model, models.Autoencoder)
    assert type(model.decoder).__name__ == "RnnFcDecoder"
    assert type(model.preprocessor).__name__ == "F0LoudnessPreprocessor"
    assert type(model.loss_objs[0]).__name__ == "SpectralLoss"
    assert gin.query_parameter("Trainer.learning_rate") == 0.01
    assert gin.query_parameter("train.num_steps") == 12
    trainer = Trainer(model)
    assert trainer.optimizer.learning_rate.numpy() == pytest.approx(0.01)


def test_includes_prefer_user_search_paths_then_the_packaged_configs(tmp_path):
    # The configs ship inside the package (an installed wheel has them too).
    assert config.GIN_DIR == Path(config.__file__).parent / "gin"
    assert (config.GIN_DIR / "models" / "ae.gin").is_file()
    user = tmp_path / "user_gin"
    assert config.search_paths([str(user)]) == [str(user), str(config.GIN_DIR)]
    (user / "models").mkdir(parents=True)
    # A user's models/ae.gin shadows the packaged one.
    (user / "models" / "ae.gin").write_text("import ddsp\nTrainer.grad_clip_norm = 7.0\n")
    (user / "mine.gin").write_text("include 'optimization/base.gin'\n"
                                   "include 'models/ae.gin'\n")
    config.parse_gin(["mine.gin"], gin_search_paths=[str(user)])
    assert gin.query_parameter("Trainer.grad_clip_norm") == 7.0
    assert gin.query_parameter("Trainer.lr_decay_rate") == 0.98  # from the packaged base.gin
    with pytest.raises(ValueError, match="Configurable 'RnnFcDecoder' has no bound parameters"):
        gin.query_parameter("RnnFcDecoder.rnn_channels")  # the packaged ae.gin was not read


def test_bindings_are_translated_and_applied_last():
    config.parse_gin(["optimization/base.gin"],
                     ["learning_rate = 0.123", "ddsp.training.trainers.Trainer.lr_decay_steps = 5"])
    assert gin.query_parameter("Trainer.lr_decay_steps") == 5
    trainer = Trainer(model=object())
    assert trainer.optimizer.learning_rate.numpy() == pytest.approx(0.123)


def test_missing_and_recursive_configs_raise_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match="no_such.gin"):
        config.parse_gin(["no_such.gin"])
    (tmp_path / "loop.gin").write_text("include 'loop.gin'\n")
    with pytest.raises(ValueError, match="loop.gin"):
        config.parse_gin([str(tmp_path / "loop.gin")], gin_search_paths=[str(tmp_path)])
    (tmp_path / "bad.gin").write_text("include 'models/missing_model.gin'\n")
    with pytest.raises(ValueError, match="missing_model.gin"):
        config.parse_gin([str(tmp_path / "bad.gin")])


def test_operative_config_is_written_and_read_back(tmp_path):
    config.parse_gin(["optimization/base.gin"], ["Trainer.learning_rate = 0.25"])
    Trainer(model=object())  # the operative config lists what was actually used
    path = config.write_operative_config(tmp_path, 40)
    assert os.path.basename(path) == "operative_config-40.gin"
    config.write_operative_config(tmp_path, 7)
    assert config.latest_operative_config(tmp_path) == path
    text = open(path).read()
    assert "Trainer.learning_rate = 0.25" in text
    gin.clear_config()
    config.parse_gin(operative_config_dir=tmp_path)
    assert gin.query_parameter("Trainer.learning_rate") == 0.25


def test_query_binding_resolves_references_macros_and_scopes():
    config.parse_gin([], ["train.data_provider = @train_data/data.InMemoryProvider()",
                          "train_data/InMemoryProvider.examples = {'x': [1.0, 2.0]}",
                          "train_data/InMemoryProvider.frame_rate = 50",
                          "chosen = [@BasicEvaluator]", "evaluate.evaluator_classes = %chosen"])
    provider = config.query_binding("train.data_provider")  # built now, with its scoped bindings
    assert (type(provider).__name__, provider.frame_rate, provider.n_examples) == ("InMemoryProvider", 50, 2)
    (evaluator,) = config.query_binding("evaluate.evaluator_classes")
    assert evaluator.__name__ == "BasicEvaluator"
    assert config.query_binding("sample.evaluator_classes", default="unbound") == "unbound"


REPO_GIN_FILES = sorted(os.path.relpath(os.path.join(root, f), config.GIN_DIR)
                        for root, _, files in os.walk(config.GIN_DIR) for f in files if f.endswith(".gin"))


@pytest.mark.parametrize("name", REPO_GIN_FILES)
def test_repository_configs_parse_with_plain_gin(name, monkeypatch):
    """No translation needed: gin itself parses every config of gin/ (configurables registered
    by `import ddsp_models.training.configurables`, which the model configs start with)."""
    import ddsp_models.training.configurables  # noqa: F401 - what a mixin's user imports first

    # Only this folder: folders earlier tests added (e.g. the original's gin tree, whose
    # files `import ddsp`) must not answer the includes.
    monkeypatch.setattr(gin.config, "_LOCATION_PREFIXES", [""])
    gin.add_config_file_search_path(str(config.GIN_DIR))
    gin.parse_config_file(str(config.GIN_DIR / name))
    assert gin.config_str().strip()


def test_the_import_line_of_a_repository_config_registers_everything():
    """In a fresh interpreter that imported nothing of this package, plain gin parses a
    model config and builds its model."""
    import subprocess
    import sys

    folder = str(config.GIN_DIR)
    code = (f"import gin; gin.add_config_file_search_path({folder!r});"
            f"gin.parse_config_file({folder!r} + '/papers/iclr2020/solo_instrument.gin');"
            "from ddsp_models.training import models; print(type(models.get_model()).__name__)")
    root = str(config.GIN_DIR.parents[2])
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": root}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "Autoencoder"


def test_a_run_config_naming_add_bare_still_binds_this_packages_add(tmp_path):
    """Run folders written before the Keras layers were registered with gin say
    ``Add.name = 'add'``; with ``tf.keras.layers.Add`` registered too the bare name is
    ambiguous, and it means this package's processors.Add (the only non-Keras match)."""
    from ddsp_models import processors
    from ddsp_models.training.nn_original import gin_register_keras_layers

    gin_register_keras_layers()
    (tmp_path / "operative_config-3.gin").write_text(
        "Add.name = 'summed'\nscoped/Add.name = 'scoped_sum'\n"
        "get_model.model = @ProcessorGroup()\nProcessorGroup.dag = [(@Add(), ['a', 'b'])]\n")
    gin.clear_config()
    config.parse_gin(operative_config_dir=tmp_path)
    assert gin.query_parameter("ddsp_models.processors.Add.name") == "summed"
    with gin.config_scope("scoped"):
        assert processors.Add().name == "scoped_sum"
    assert processors.Add().name == "summed"
    (adder, inputs), = gin.query_parameter("ProcessorGroup.dag")
    assert adder.selector == "ddsp_models.processors.Add" and inputs == ["a", "b"]
    gin.clear_config()
