"""Run configuration (pipelines/runs.py): params -> gin files and bindings."""
import pytest

from pipelines.params import load_params
from pipelines.runs import MIDI_ENCODER_MIXIN, DatasetInfo, gin_config, notes_mode


def info(config="midi"):
    return DatasetInfo("data/tfds", config, 16000, 250, 8000, 125, {"train": 6})


def test_bindings_carry_clip_length_rates_and_the_shared_decoder_sizes():
    params = load_params(None, {"train": {"ae": {"rnn_channels": 32, "mlp_units": 24,
                                                 "n_harmonics": 12, "noise_bands": 9}}})
    _, ae = gin_config(params, "ae", info())
    _, midiae = gin_config(params, "midiae", info())
    for bindings in (ae, midiae):
        assert "Harmonic.n_samples = 8000" in bindings
        assert "F0LoudnessPreprocessor.time_steps = 125" in bindings
        assert "RnnFcDecoder.rnn_channels = 32" in bindings and "RnnFcDecoder.ch = 24" in bindings
        assert ("RnnFcDecoder.output_splits = (('amps', 1), ('harmonic_distribution', 12), "
                "('noise_magnitudes', 9))") in bindings
    assert "Reverb.reverb_length = 16000" in ae
    # The MIDI model's reverb length is a whole number of its decay frames.
    (reverb,) = [b for b in midiae if b.startswith("FilteredNoiseReverb.reverb_length")]
    assert int(reverb.split("=")[1]) % 50 == 0


def test_user_gin_params_come_last_and_win():
    params = load_params(None, {"train": {"ae": {"gin_params": ["RnnFcDecoder.ch = 7"]}}})
    _, bindings = gin_config(params, "ae", info())
    assert bindings[-1] == "RnnFcDecoder.ch = 7"


def test_midi_runs_transcribe_their_notes_when_the_dataset_has_none():
    import gin

    from ddsp_models.training import models
    from ddsp_models.training.encoders import HarmonicToMidiEncoder
    from ddsp_models.training.config import parse_gin

    params = load_params(None)
    assert notes_mode(params, "midiae", info("midi")) == "ground_truth"
    assert notes_mode(params, "midiae", info("audio")) == "encoded"
    files, bindings = gin_config(params, "midiae", info("audio"))
    assert files[-1] == MIDI_ENCODER_MIXIN
    gin_files = [f for f in files if not f.startswith("datasets/")]
    parse_gin(gin_files, [b for b in bindings if not b.startswith("PreparedTfdsProvider")])
    model = models.get_model()
    assert isinstance(model.midi_encoder, HarmonicToMidiEncoder)
    gin.clear_config()
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
    import gin

    from ddsp_models.training import models
    from ddsp_models.training.config import parse_gin
    from pipelines.runs import dataset_info

    scanned = dataset_info(tone_dataset)
    assert scanned.instrument_ids == (40,)  # every tone clip is a violin (GM program 40)
    params = load_params(None)
    files, bindings = gin_config(params, "zmidiae", scanned)
    assert "OneHotEncoder.n_classes = 41" in bindings
    assert not any(b.startswith("OneHotEncoder.unknown_id") for b in bindings)
    parse_gin([f for f in files if not f.startswith("datasets/")],
              [b for b in bindings if not b.startswith("PreparedTfdsProvider")])
    encoder = models.get_model().z_global_encoder_0
    assert encoder.n_classes == 41 and encoder.unknown_id is None
    gin.clear_config()
    # Several instruments, some unknown (-1): the largest id sizes it, -1 gets the zero row.
    mixed = DatasetInfo("data/tfds", "audio", 16000, 250, 8000, 125, {"train": 6}, (-1, 42, 73))
    _, bindings = gin_config(params, "zmidiae", mixed)
    assert "OneHotEncoder.n_classes = 74" in bindings and "OneHotEncoder.unknown_id = -1" in bindings
