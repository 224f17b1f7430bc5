"""Run configuration (ddsp_models/training/run_config.py): params -> gin macros -> the
resolved config of each run."""
import copy
import logging

import gin
import pytest

from ddsp_models.training.config import parse_gin
from ddsp_models.training.params import RUNS, load_params
from ddsp_models.training.run_config import (
    MIDI_ENCODER_MIXIN,
    PIPELINE_BINDINGS,
    RUN_MACROS,
    DatasetInfo,
    gin_config,
    notes_mode,
)

AE = {"rnn_channels": 32, "mlp_units": 24, "mlp_layers": 1, "n_harmonics": 12,
      "noise_bands": 9, "reverb_seconds": 1.0}


def info(config="midi", instrument_ids=(40,)):
    return DatasetInfo("data/tfds", config, 16000, 250, 8000, 125, {"train": 6}, instrument_ids)


def _resolve(value):
    """A bound value with every macro reference replaced by the macro's value."""
    if isinstance(value, gin.config.ConfigurableReference):
        if value.selector == "gin.macro":
            return _resolve(gin.config._CONFIG[(value.scoped_selector.split("/")[0],
                                                "gin.macro")]["value"])
        return "@" + value.scoped_selector
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v) for v in value)
    return value


def resolved_config(params, run, dataset=None) -> dict:
    """``{'Configurable.param': value}`` of a run's parsed config, macros resolved."""
    files, bindings = gin_config(params, run, dataset or info())
    gin.clear_config()
    parse_gin(files, bindings)
    config = {}
    for (scope, selector), values in gin.config._CONFIG.items():
        if selector == "gin.macro":
            continue
        name = selector.rsplit(".", 1)[-1]
        for key, value in values.items():
            config[f"{scope + '/' if scope else ''}{name}.{key}"] = _resolve(value)
    gin.clear_config()
    return config


def test_params_and_the_dataset_reach_the_config_of_the_ae_and_midiae_runs():
    params = load_params(None, {"train": {"ae": AE, "midiae": {"rnn_channels": 20,
                                                               "mlp_units": 10, "notes": "auto"},
                                          "batch_size": 3, "learning_rate": 0.002}})
    splits = (("amps", 1), ("harmonic_distribution", 12), ("noise_magnitudes", 9))
    ae, midiae = resolved_config(params, "ae"), resolved_config(params, "midiae")
    for config in (ae, midiae):
        assert config["Harmonic.n_samples"] == config["FilteredNoise.n_samples"] == 8000
        assert config["Harmonic.sample_rate"] == 16000
        assert config["F0LoudnessPreprocessor.time_steps"] == 125
        assert config["RnnFcDecoder.rnn_channels"] == 32 and config["RnnFcDecoder.ch"] == 24
        assert config["RnnFcDecoder.output_splits"] == splits
        assert config["train.batch_size"] == 3 and config["Trainer.learning_rate"] == 0.002
        assert config["PreparedTfdsProvider.data_dir"] == "data/tfds"
        assert config["Trainer.checkpoints_to_keep"] == 2
    assert ae["Reverb.reverb_length"] == 16000
    # The MIDI decoder: its own sizes, the synth's outputs; the reverb length is a whole
    # number of the FilteredNoiseReverb's 50 decay frames.
    assert midiae["MidiToHarmonicDecoder.rnn_channels"] == 20
    assert midiae["MidiToHarmonicDecoder.ch"] == 10
    assert midiae["MidiToHarmonicDecoder.output_splits"] == splits
    assert midiae["FilteredNoiseReverb.n_frames"] == 50
    assert midiae["FilteredNoiseReverb.reverb_length"] == 16000
    params = load_params(None, {"train": {"ae": {**AE, "reverb_seconds": 0.33}}})
    assert resolved_config(params, "ae")["Reverb.reverb_length"] == 5280
    assert resolved_config(params, "midiae")["FilteredNoiseReverb.reverb_length"] == 5300


def _contains(value, wanted) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_contains(v, wanted) for v in value)
    return value == wanted


@pytest.mark.parametrize("run", RUNS)
def test_every_params_key_of_the_macro_map_changes_the_resolved_config(run):
    base = {"train": {"ae": dict(AE), "midiae": {"notes": "encoded"},
                      "zmidiae": {"notes": "encoded"}}}
    params = load_params(None, base)
    before = resolved_config(params, run)
    for key in RUN_MACROS[run]:  # e.g. 'ae.rnn_channels', 'batch_size'
        *path, name = key.split(".")
        overrides, section = copy.deepcopy(base), params["train"]
        node = overrides["train"]
        for part in path:
            node, section = node.setdefault(part, {}), section[part]
        new = {"tiny": "small", "small": "tiny"}.get(section[name]) or section[name] * 2
        node[name] = new
        after = resolved_config(load_params(None, overrides), run)
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert changed, f"train.{key} changed nothing in the {run} run"
        assert all(_contains(after[k], new) for k in changed), (key, changed)


def test_the_pipeline_binds_macros_only_besides_its_fixed_bindings_and_gin_params():
    params = load_params(None, {"train": {"ae": {"gin_params": ["RnnFcDecoder.ch = 7"]}}})
    for run in ("ae", "midiae", "zmidiae", "inverse"):
        _, bindings = gin_config(params, run, info())
        own = [b for b in bindings if b not in PIPELINE_BINDINGS
               and b not in params["train"][run]["gin_params"]]
        assert own and all(b.split("=")[0].strip().replace("_", "").isalnum() for b in own), own


def test_user_gin_params_come_last_and_win():
    params = load_params(None, {"train": {"ae": {"gin_params": ["RnnFcDecoder.ch = 7"]}}})
    _, bindings = gin_config(params, "ae", info())
    assert bindings[-1] == "RnnFcDecoder.ch = 7"
    assert resolved_config(params, "ae")["RnnFcDecoder.ch"] == 7


def test_a_params_key_no_gin_file_uses_is_reported(tmp_path, caplog):
    custom = tmp_path / "fixed.gin"
    custom.write_text("Harmonic.n_samples = 8000\n")  # fixed sizes, no macros
    params = load_params(None, {"train": {"ae": {"gin_files": [str(custom)], "gin_params": []}}})
    with caplog.at_level(logging.WARNING, logger="ddsp_models.training.run_config"):
        _, bindings = gin_config(params, "ae", info())
    assert "train.ae.rnn_channels has no effect on the ae run" in caplog.text
    assert bindings == list(PIPELINE_BINDINGS)


def test_midi_runs_transcribe_their_notes_when_the_dataset_has_none():
    from ddsp_models.training import models
    from ddsp_models.training.encoders import HarmonicToMidiEncoder

    params = load_params(None, {"train": {"midiae": {"notes": "auto", "rnn_channels": 20,
                                                     "mlp_units": 10, "mlp_layers": 1}}})
    assert notes_mode(params, "midiae", info("midi")) == "ground_truth"
    assert notes_mode(params, "midiae", info("audio")) == "encoded"
    files, bindings = gin_config(params, "midiae", info("audio"))
    assert files[-1] == MIDI_ENCODER_MIXIN
    parse_gin(files, bindings)
    model = models.get_model()
    assert isinstance(model.midi_encoder, HarmonicToMidiEncoder)
    config = resolved_config(params, "midiae", info("audio"))
    assert config["HarmonicToMidiEncoder.rnn_channels"] == 20
    assert config["HarmonicToMidiEncoder.ch"] == 10
    assert config["HarmonicToMidiEncoder.layers_per_stack"] == 1
    files, _ = gin_config(params, "midiae", info("midi"))
    assert MIDI_ENCODER_MIXIN not in files


def test_ground_truth_notes_without_annotations_is_an_error_naming_the_key():
    params = load_params(None, {"train": {"zmidiae": {"notes": "ground_truth"}}})
    with pytest.raises(ValueError, match=r"train\.zmidiae\.notes"):
        gin_config(params, "zmidiae", info("audio"))


def test_unknown_run_is_named():
    with pytest.raises(ValueError, match="unknown run 'vae'"):
        gin_config(load_params(None), "vae", info())


def test_zmidiae_instrument_classes_come_from_the_dataset(tone_dataset):
    from ddsp_models.training import models
    from ddsp_models.training.run_config import dataset_info

    scanned = dataset_info(tone_dataset)
    assert scanned.instrument_ids == (40,)  # every tone clip is a violin (GM program 40)
    params = load_params(None, {"train": {"zmidiae": {"notes": "auto"}}})
    config = resolved_config(params, "zmidiae", scanned)
    assert config["OneHotEncoder.n_classes"] == 41
    assert config["OneHotEncoder.unknown_id"] is None
    files, bindings = gin_config(params, "zmidiae", scanned)
    parse_gin(files, bindings)
    encoder = models.get_model().z_global_encoder_0
    assert encoder.n_classes == 41 and encoder.unknown_id is None
    # Several instruments, some unknown (-1): the largest id sizes it, -1 gets the zero row.
    config = resolved_config(params, "zmidiae", info("audio", (-1, 42, 73)))
    assert config["OneHotEncoder.n_classes"] == 74 and config["OneHotEncoder.unknown_id"] == -1


@pytest.mark.parametrize("run", ["midiae", "zmidiae"])
def test_the_midi_runs_train_the_midi_decoders_pitch(run):
    """The pipeline's MIDI models carry this package's pitch losses (the constructors
    default to none, as the original adds no loss it is not given): without them the MIDI
    decoder's pitch is never pulled to the notes."""
    from ddsp_models.training import models

    files, bindings = gin_config(load_params(None), run, info())
    gin.clear_config()
    parse_gin(files, bindings)
    try:
        model = models.get_model()
    finally:
        gin.clear_config()
    assert (model.pitch_weight, model.pitch_qt_weight) == (1.0, 1.0)
    assert (model.pitch_q_weight, model.slowness_weight) == (0.1, 0.1)
    for loss in (model.pitch_f0rec_loss, model.qpitch_f0rec_loss, model.pitch_qpitch_loss,
                 model.midi_slowness_loss):
        assert loss is not None
