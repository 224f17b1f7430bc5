"""An original DDSP 3.7.0 InverseSynthesis model folder loads in ours and computes the same
numbers.

scripts/golden/record_upstream_inverse.py built the original's InverseSynthesis from its
papers/icml2020/finetune_model.gin (shrunk by gin: 8192-sample clips, 16 sinusoids and
harmonics, 17 noise bands, a 32-unit RnnSandwich; its ResNet 'small' is fixed), gave every
variable a seeded periodic pattern, and wrote the folder as its trainer does
(operative_config-1200.gin, ckpt-1200.* with model and optimizer, checkpoint; the data file
xz-compressed) with the original's numbers on a real-audio batch and on a self-supervised
batch of its synthetic notes (golden.npz). Here `compat.load_upstream_model` reads the
folder (decompressed into a temporary folder) and ours must give the original's controls,
harmonic outputs, signals and losses to float32 round-off.
"""
import json
import lzma
import os
import shutil

import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp_models.compat import convert, load_upstream_model
from ddsp_models.training import encoders, models
from ddsp_models.training.config import latest_operative_config, parse_gin
from ddsp_models.training.encoders_inverse import with_current_bindings

FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "golden", "upstream_models",
                      "inverse_synthesis")
with open(os.path.join(FOLDER, "manifest.json")) as f:
    HEADER = json.load(f)
with np.load(os.path.join(FOLDER, "golden.npz")) as data:
    GOLDEN = {key: data[key] for key in data.files}
CONTROLS = ("sin_amps", "sin_freqs", "noise_magnitudes")
HARMONIC = ("harm_amp", "harm_dist", "f0_hz", "harm_amps", "harm_freqs")
MEASURED = {}  # key -> max |ours - original|, printed at the end (pytest -s)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A copy of the recorded folder with its checkpoint data decompressed."""
    folder = tmp_path_factory.mktemp("inverse_synthesis")
    for name in os.listdir(FOLDER):
        if name.endswith(".xz"):
            with lzma.open(os.path.join(FOLDER, name)) as src, open(folder / name[:-3], "wb") as dst:
                shutil.copyfileobj(src, dst)
        elif name != "golden.npz":
            shutil.copy(os.path.join(FOLDER, name), folder / name)
    return folder


@pytest.fixture(scope="module")
def model(folder):
    """Ours, loaded from the original's folder."""
    loaded = load_upstream_model(folder)
    yield loaded
    if MEASURED:
        print("\nmax |ours - original|:", json.dumps(MEASURED, indent=1))


def batch(prefix):
    return {key.rsplit("/", 1)[1]: tf.constant(value) for key, value in GOLDEN.items()
            if key.startswith(f"input/{prefix}/")}


def assert_close(actual, key, rtol=2e-5):
    """|ours - original| <= rtol * max(1, max |original|) (float32 round-off through the
    5 M-value ResNet)."""
    expected = GOLDEN[key]
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, key
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale, err_msg=key)
    MEASURED[key] = float(np.abs(actual - expected).max())


def assert_signals(model, outputs, prefix):
    """The Sinusoidal synth's signal of the sinusoidal controls and of the harmonic ones.
    From the original's controls it matches to round-off; from ours, whose frequencies
    differ by ~5e-6 relative, the phases drift over 8192 samples (bounded by 2e-3 x peak)."""
    for name, (amps, freqs) in (("sinusoidal_signal", ("sin_amps", "sin_freqs")),
                                ("harmonic_signal", ("harm_amps", "harm_freqs"))):
        key = f"{prefix}/{name}"
        peak = float(np.abs(GOLDEN[key]).max())
        for source, tolerance in (("original controls", 1e-5), ("our controls", 2e-3)):
            if source == "original controls":
                a, f = tf.constant(GOLDEN[f"{prefix}/{amps}"]), tf.constant(GOLDEN[f"{prefix}/{freqs}"])
            else:
                a, f = outputs[amps], outputs[freqs]
            signal = model.synthesize_outputs(a, f, outputs["noise_magnitudes"])["sinusoidal/signal"].numpy()
            np.testing.assert_allclose(signal, GOLDEN[key], rtol=0, atol=tolerance * peak,
                                       err_msg=f"{key} from {source}")
            MEASURED[f"{key} ({source})"] = float(np.abs(signal - GOLDEN[key]).max())


def assert_losses(losses, prefix):
    expected = sorted(key.rsplit("/", 1)[1] for key in GOLDEN if key.startswith(f"{prefix}/losses/"))
    # The spectral losses (and so the total) hear the random filtered noise: not recorded.
    assert sorted(set(losses) - {"sin_spectral_loss", "harm_spectral_loss", "total_loss"}) == expected
    for name in expected:
        key = f"{prefix}/losses/{name}"
        np.testing.assert_allclose(losses[name].numpy(), GOLDEN[key], rtol=2e-5, err_msg=key)
        MEASURED[key] = float(abs(losses[name].numpy() - GOLDEN[key]))


def test_the_folder_builds_the_originals_model_with_every_variable(model):
    assert isinstance(model, models.InverseSynthesis)
    assert isinstance(model.sinusoidal_encoder, encoders.ResnetSinusoidalEncoder)
    assert isinstance(model.harmonic_encoder, encoders.SinusoidalToHarmonicEncoder)
    assert model.n_samples == HEADER["n_samples"] and model.reverb is False
    assert len(model.weights) == HEADER["n_variables"]
    assert sum(int(np.prod(v.shape)) for v in model.weights) == HEADER["n_values"] > 5_000_000
    # The checkpoint's values, not fresh initialisations: the seeded pattern repeats with
    # period 251, so the ResNet's first kernel holds at most 251 distinct values.
    kernel = model.sinusoidal_encoder.resnet.weights[0].numpy()
    assert kernel.size > 251 and len(np.unique(kernel)) <= 251


def test_real_audio_controls_signals_and_losses_match_the_original(model):
    outputs, losses = model(batch("real"), training=True, return_losses=True)
    for key in CONTROLS + HARMONIC:
        assert_close(outputs[key].numpy(), f"real/{key}")
    assert_signals(model, outputs, "real")
    assert_losses(losses, "real")


def test_self_supervised_batch_renders_the_originals_audio(model):
    # Features with true controls and no audio: the model renders the audio from them, as
    # the original does (the filtered noise is silent: the recorder zeroed its magnitudes).
    outputs = model(batch("ss"), training=True)
    peak = float(np.abs(GOLDEN["ss/audio"]).max())
    np.testing.assert_allclose(outputs["audio"].numpy(), GOLDEN["ss/audio"], rtol=0, atol=1e-6 * peak)
    MEASURED["ss/audio"] = float(np.abs(outputs["audio"].numpy() - GOLDEN["ss/audio"]).max())


def test_self_supervised_controls_signals_and_losses_match_the_original(model):
    # On the original's rendered audio: the synthetic notes are pure tones, whose log-mel
    # bins far from the partials magnify the rendering's float32 round-off (~3e-7) into
    # ~3% of the encoder's outputs, so both models must see the same samples here.
    features = dict(batch("ss"), audio=tf.constant(GOLDEN["ss/audio"]))
    outputs, losses = model(features, training=True, return_losses=True)
    for key in CONTROLS + HARMONIC:
        assert_close(outputs[key].numpy(), f"ss/{key}")
    assert_signals(model, outputs, "ss")
    assert_losses(losses, "ss")


def test_the_loaded_encoder_keeps_the_folders_log_mel_after_gin_changes(model):
    # The original config's spectral_fn is a gin-scoped reference
    # (@f0_spectral/spectral_ops.compute_logmel, 229 bins, 2048-point FFT): its bindings are
    # fixed when the encoder is built, so clearing gin (or parsing another folder) does not
    # change the model (the defaults would give 64 bins and 8 frames).
    gin.clear_config()
    logmel = model.sinusoidal_encoder.logmel(tf.constant(GOLDEN["input/real/audio"]))
    assert logmel.shape == (2, HEADER["n_frames"], 229)
    plain = lambda audio: audio  # noqa: E731
    assert with_current_bindings(plain) is plain  # not a gin configurable: as it is


def test_a_converted_folder_restores_in_this_packages_own_way(model, folder, tmp_path):
    # compat.convert writes a run of this package (its operative config, ckpt-1200 of
    # Checkpoint(model=...)); built from that config and restored by Model.restore, the
    # model gives the original's controls again.
    result = convert(folder, tmp_path / "run")
    assert (result["step"], result["variables"]) == (HEADER["step"], HEADER["n_variables"])
    gin.clear_config()
    parse_gin([latest_operative_config(tmp_path / "run")])
    restored = models.get_model()
    restored(batch("real"))
    restored.restore(result["checkpoint"])
    outputs = restored(batch("real"))
    for key in ("sin_freqs", "harm_amp", "f0_hz"):
        assert_close(outputs[key].numpy(), f"real/{key}")


def test_the_golden_numbers_depend_on_the_inputs():
    # Guards the recording: the two batches' controls differ, the harmonic encoder sees
    # distinct frames, and every recorded loss is a non-trivial number.
    assert np.abs(GOLDEN["real/sin_freqs"] - GOLDEN["ss/sin_freqs"]).max() > 10.0
    assert np.abs(np.diff(GOLDEN["real/f0_hz"], axis=1)).max() > 0.1
    assert np.abs(GOLDEN["ss/audio"]).max() > 0.1 and GOLDEN["input/ss/f0_hz"].min() > 20.0
    assert all(GOLDEN[key] > 0.1 for key in GOLDEN if "/losses/" in key)
    assert HEADER["ddsp_version"] == "3.7.0"
