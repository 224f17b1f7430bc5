"""Specification of ddsp_models.spectral_ops: STFT, mel/MFCC, A-weighted loudness, power, f0.

Defaults and framing are the original DDSP 3.7.0's (tests/test_golden_dsp.py checks its
recorded numbers): 'center' framing gives n_samples // hop + 1 frames, loudness and power
floor at -80 dB, power frames are 512 samples.
"""
import gin
import librosa
import numpy as np
import pytest
import scipy.fft
import tensorflow as tf

from ddsp_models import core, spectral_ops

SR = 16000


def sine(freq_hz, n_samples=SR, amplitude=1.0, sample_rate=SR):
    t = np.arange(n_samples) / sample_rate
    return (amplitude * np.sin(2.0 * np.pi * freq_hz * t)).astype(np.float32)


def noise(shape, scale=0.1, seed=0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def htk_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz) / 700.0)


def htk_hz(mel):
    return 700.0 * np.expm1(np.asarray(mel) / 1127.0)


# ------------------------------------------------------------------------------ STFT
def test_stft_of_a_bin_centred_sine_peaks_at_its_bin_with_amplitude_times_size_over_4():
    size, bin_index, amplitude = 512, 40, 0.5
    audio = sine(bin_index * SR / size, n_samples=8000, amplitude=amplitude)
    spectrum = spectral_ops.stft(audio, frame_size=size, overlap=0.75)
    assert spectrum.dtype == tf.complex64
    assert spectrum.shape == (1, int(np.ceil(8000 / 128)), size // 2 + 1)
    mag = np.abs(spectrum.numpy())[0, 2:-4]  # frames fully inside the signal
    assert np.all(np.argmax(mag, axis=-1) == bin_index)
    np.testing.assert_allclose(mag[:, bin_index], amplitude * size / 4, rtol=1e-4)
    # Hann main lobe: the neighbouring bins hold half the peak.
    np.testing.assert_allclose(mag[:, bin_index + 1], amplitude * size / 8, rtol=1e-3)


def test_stft_equals_tf_signal_stft_and_pad_end_sets_the_frame_count():
    audio = noise((2, 3000))
    for pad_end, n_frames in ((True, int(np.ceil(3000 / 64))), (False, 1 + (3000 - 256) // 64)):
        ours = spectral_ops.stft(audio, frame_size=256, overlap=0.75, pad_end=pad_end)
        ref = tf.signal.stft(audio, 256, 64, 256, pad_end=pad_end)
        assert ours.shape == (2, n_frames, 129)
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-5)


@pytest.mark.parametrize("n_samples,frame_size,hop,padding", [
    (1000, 64, 16, "same"), (1003, 64, 16, "center"), (1000, 100, 30, "valid"), (1003, 65, 13, "center"),
    (999, 512, 64, "center")])
def test_custom_stft_gradients_equal_tf_autodiff(n_samples, frame_size, hop, padding):
    """The hand-written backward pass of the windowed rfft (complex, magnitude, power outputs)
    gives the same gradient as TF differentiating pad -> frame -> window -> rfft itself."""
    audio = tf.constant(noise((2, n_samples), scale=1.0, seed=3))
    n_frames, left, right = spectral_ops.framing(n_samples, frame_size, hop, padding)
    rng = np.random.default_rng(4)
    for output in ("complex", "magnitude", "power"):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(audio)
            frames = tf.signal.frame(tf.pad(audio, [[0, 0], [left, right]]), frame_size, hop)[:, :n_frames]
            ref = tf.signal.rfft(frames * tf.signal.hann_window(frame_size))
            ref = {"complex": ref, "magnitude": tf.abs(ref), "power": tf.abs(ref) ** 2}[output]
            ours = spectral_ops._windowed_rfft(audio, frame_size, hop, padding, output)
            probe = tf.constant(rng.standard_normal(ours.shape).astype(np.float32))
            probe = tf.cast(probe, ours.dtype)
            loss_ref = tf.reduce_sum(tf.math.real(ref * probe) + tf.abs(ref))
            loss_ours = tf.reduce_sum(tf.math.real(ours * probe) + tf.abs(ours))
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-5, atol=1e-4)
        grad_ref, grad_ours = tape.gradient(loss_ref, audio), tape.gradient(loss_ours, audio)
        scale = np.abs(grad_ref.numpy()).max()
        assert scale > 0
        np.testing.assert_allclose(grad_ours.numpy() / scale, grad_ref.numpy() / scale, atol=1e-5)


def test_magnitude_gradient_is_finite_at_silence():
    silence = tf.zeros([1, 2000])
    with tf.GradientTape() as tape:
        tape.watch(silence)
        loss = tf.reduce_sum(spectral_ops.compute_mag(silence, size=256))
    assert np.all(np.isfinite(tape.gradient(loss, silence).numpy()))


def test_logmag_is_safe_log_of_mag():
    audio = noise((1, 4000))
    mag = spectral_ops.compute_mag(audio, size=256).numpy()
    logmag = spectral_ops.compute_logmag(audio, size=256).numpy()
    np.testing.assert_allclose(logmag, np.log(np.maximum(mag, 1e-5)), rtol=1e-5, atol=1e-5)
    silent = spectral_ops.compute_logmag(np.zeros(4000, np.float32), size=256).numpy()
    np.testing.assert_allclose(silent, np.log(1e-5), rtol=1e-6)


# --------------------------------------------------------------------------- mel, MFCC
@pytest.mark.parametrize("band", [5, 20, 45])
def test_mel_peak_of_a_pure_tone_lands_in_the_band_centred_on_it(band):
    lo_hz, hi_hz, bins = 0.0, 8000.0, 64
    centres = htk_hz(np.linspace(htk_mel(lo_hz), htk_mel(hi_hz), bins + 2))[1:-1]
    mel = spectral_ops.compute_mel(sine(centres[band], 8000), lo_hz=lo_hz, hi_hz=hi_hz, bins=bins)
    assert mel.shape == (1, 16, bins)
    spectrum = mel.numpy()[0, 2:-2].mean(axis=0)
    assert np.argmax(spectrum) == band
    assert spectrum[band] > 2.0 * max(spectrum[band - 1], spectrum[band + 1])


def test_logmel_uses_80_to_7600_hz_and_is_log_of_mel():
    audio = sine(1000.0, 8000) + noise(8000, 0.01)
    logmel = spectral_ops.compute_logmel(audio, bins=32).numpy()
    mel = spectral_ops.compute_mel(audio, lo_hz=80.0, hi_hz=7600.0, bins=32).numpy()
    np.testing.assert_allclose(logmel, np.log(np.maximum(mel, 1e-5)), rtol=1e-5, atol=1e-5)
    centres = htk_hz(np.linspace(htk_mel(80.0), htk_mel(7600.0), 34))[1:-1]
    assert np.argmax(logmel[0, 4]) == np.argmin(np.abs(htk_mel(centres) - htk_mel(1000.0)))


def test_mfcc_is_scaled_dct_of_logmel():
    audio = noise((2, 8000), seed=5)
    mfcc = spectral_ops.compute_mfcc(audio).numpy()
    assert mfcc.shape == (2, 32, 13)
    logmel = spectral_ops.compute_logmel(audio, lo_hz=20.0, hi_hz=8000.0, bins=128, fft_size=1024).numpy()
    expected = scipy.fft.dct(logmel.astype(np.float64), type=2, norm="ortho", axis=-1)[..., :13]
    expected[..., 0] *= np.sqrt(2.0)  # TF scales every coefficient by 1 / sqrt(2 * n_mels)
    np.testing.assert_allclose(mfcc, expected, rtol=1e-4, atol=1e-3)


def test_doubling_the_gain_moves_only_the_first_mfcc():
    audio = noise((1, 8000), seed=6)
    mfcc = spectral_ops.compute_mfcc(audio, mel_bins=128).numpy()
    louder = spectral_ops.compute_mfcc(2.0 * audio, mel_bins=128).numpy()
    # Every log-mel rises by ln 2; c0 = sqrt(2 / n) * sum(logmel) rises by sqrt(2n) ln 2.
    np.testing.assert_allclose(louder[..., 0] - mfcc[..., 0], np.sqrt(2 * 128) * np.log(2.0), rtol=1e-3)
    np.testing.assert_allclose(louder[..., 1:], mfcc[..., 1:], atol=2e-3)


# ---------------------------------------------------------------------- A-weighting
def test_a_weighting_follows_iec_61672_and_librosa():
    frequencies = np.concatenate([[0.0, 10.0, 31.5, 100.0, 1000.0, 10000.0, 20000.0],
                                  spectral_ops.fft_frequencies(SR, 2048)])
    ours = spectral_ops.a_weighting(frequencies)
    with np.errstate(divide="ignore"):  # librosa takes log10(0) at 0 Hz before clipping
        reference = librosa.A_weighting(frequencies)
    np.testing.assert_allclose(ours, reference, atol=0.01)
    # Tabulated IEC 61672 values (dB, rounded to 0.1 dB) at exact base-10 frequencies.
    table = {10 ** 1.5: -39.4, 100.0: -19.1, 1000.0: 0.0, 10000.0: -2.5}
    for freq, db in table.items():
        assert abs(spectral_ops.a_weighting(freq) - db) < 0.06
    assert spectral_ops.a_weighting(0.0) == -80.0


# ------------------------------------------------------------------------- loudness
@pytest.mark.parametrize("padding,n_frames", [
    ("center", 1001), ("same", 1000), ("valid", 1 + (64000 - 512) // 64)])
def test_loudness_frame_counts_of_4_seconds_at_250_hz(padding, n_frames):
    """'center' frames sit on samples 0, 64, ..., 64000: one more than hops (the original)."""
    audio = noise(64000)
    loudness = spectral_ops.compute_loudness(audio, padding=padding)
    assert loudness.shape == (n_frames,)
    batched = spectral_ops.compute_loudness(np.stack([audio, audio]), padding=padding)
    assert batched.shape == (2, n_frames)
    np.testing.assert_allclose(batched.numpy()[1], loudness.numpy(), atol=1e-4)


def test_loudness_of_a_full_scale_1khz_sine_matches_its_power_spectrum():
    # A sine on a bin centre: |X| = N/4 at its bin and N/8 at both neighbours (Hann), so the
    # mean power over N/2 + 1 bins is (3 N^2 / 32) / (N/2 + 1), weighted by A(1 kHz) ~ 0 dB.
    n_fft = 2048
    loudness = spectral_ops.compute_loudness(sine(1000.0, 16000), n_fft=n_fft).numpy()
    expected = 10 * np.log10(3 * n_fft ** 2 / 32 / (n_fft / 2 + 1)) + spectral_ops.a_weighting(1000.0)
    np.testing.assert_allclose(loudness[20:-20], expected, atol=0.02)


def test_doubling_amplitude_raises_loudness_by_6_db():
    audio = sine(440.0, 16000, amplitude=0.25) + noise(16000, 0.01)
    quiet = spectral_ops.compute_loudness(audio).numpy()
    loud = spectral_ops.compute_loudness(2.0 * audio).numpy()
    np.testing.assert_allclose(loud - quiet, 20 * np.log10(2.0), atol=0.5)
    np.testing.assert_allclose(np.median(loud - quiet), 6.02, atol=0.01)


def test_loudness_of_1khz_and_100hz_sines_differs_by_the_a_weighting():
    n_fft = 2048
    high = spectral_ops.compute_loudness(sine(1000.0, 16000), n_fft=n_fft).numpy()
    low = spectral_ops.compute_loudness(sine(100.0, 16000), n_fft=n_fft).numpy()
    expected = spectral_ops.a_weighting(1000.0) - spectral_ops.a_weighting(100.0)  # ~19.1 dB
    assert 19.0 < expected < 19.3
    np.testing.assert_allclose(np.median(high - low), expected, atol=0.1)


@pytest.mark.parametrize("padding", spectral_ops.PADDINGS)
def test_loudness_tf_and_numpy_paths_agree(padding):
    audio = np.stack([noise(16000, 0.01, seed=7), sine(440.0, 16000, 0.5), np.zeros(16000, np.float32)])
    for n_fft in (512, 2048):
        ld_tf = spectral_ops.compute_loudness(audio, n_fft=n_fft, padding=padding, use_tf=True)
        ld_np = spectral_ops.compute_loudness(audio, n_fft=n_fft, padding=padding, use_tf=False)
        assert isinstance(ld_np, np.ndarray) and ld_np.dtype == np.float32
        np.testing.assert_allclose(ld_np, ld_tf.numpy(), atol=1e-3)


def test_loudness_floor_and_reference():
    silence = np.zeros(4000, np.float32)
    np.testing.assert_array_equal(spectral_ops.compute_loudness(silence).numpy(), -core.DB_RANGE)
    np.testing.assert_array_equal(spectral_ops.compute_loudness(silence, range_db=120.0).numpy(), -120.0)
    audio = sine(440.0, 4000, 0.5)
    shifted = spectral_ops.compute_loudness(audio, ref_db=20.0).numpy()
    np.testing.assert_allclose(shifted, spectral_ops.compute_loudness(audio).numpy() - 20.0, atol=1e-4)


def test_loudness_is_differentiable_and_works_in_tf_function():
    audio = tf.Variable(sine(440.0, 4000, 0.5)[np.newaxis] + noise((1, 4000), 0.01))
    compute = tf.function(lambda x: spectral_ops.compute_loudness(x, n_fft=2048))
    with tf.GradientTape() as tape:
        loudness = compute(audio)
        mean = tf.reduce_mean(loudness)
    grad = tape.gradient(mean, audio).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    eager = spectral_ops.compute_loudness(audio, n_fft=2048).numpy()
    np.testing.assert_allclose(loudness.numpy(), eager, atol=1e-4)
    # Louder audio -> higher loudness: the gradient points along the signal.
    assert float(tf.reduce_sum(grad * audio)) > 0


# ---------------------------------------------------------------------- power, RMS
def test_power_and_rms_of_a_full_scale_sine():
    audio = sine(437.5, 16000)  # 14 whole periods per 512-sample frame
    power = spectral_ops.compute_power(audio).numpy()
    rms = spectral_ops.compute_rms_energy(audio).numpy()
    assert power.shape == (251,) and rms.shape == (251,)
    np.testing.assert_allclose(power[10:-10], 10 * np.log10(0.5), atol=0.01)  # -3.01 dB
    np.testing.assert_allclose(rms[20:-20], np.sqrt(0.5), rtol=1e-4)
    rms_2048 = spectral_ops.compute_rms_energy(audio, frame_size=2048).numpy()
    np.testing.assert_allclose(rms_2048[20:-20], np.sqrt(0.5), rtol=1e-4)
    # Centre padding: the first and last frames are half zeros.
    np.testing.assert_allclose(power[[0, -1]], 10 * np.log10(0.25), atol=0.05)
    np.testing.assert_allclose(spectral_ops.compute_power(np.zeros(1600, np.float32)).numpy(), -core.DB_RANGE)


def test_power_frames_follow_padding_and_gradients_are_finite():
    audio = tf.Variable(noise((2, 8000)))
    assert spectral_ops.compute_power(audio, padding="same").shape == (2, 125)
    assert spectral_ops.compute_power(audio, padding="valid").shape == (2, 1 + (8000 - 512) // 64)
    assert spectral_ops.compute_power(audio).shape == (2, 126)
    silence = tf.Variable(tf.zeros([1, 4000]))
    with tf.GradientTape() as tape:
        loss = (tf.reduce_sum(spectral_ops.compute_rms_energy(audio))
                + tf.reduce_sum(tf.function(spectral_ops.compute_power)(audio))
                + tf.reduce_sum(spectral_ops.compute_rms_energy(silence)))
    grads = tape.gradient(loss, [audio, silence])
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    assert np.abs(grads[0].numpy()).max() > 0


# ---------------------------------------------------------------------------- f0
def test_compute_f0_delegates_to_crepe():
    """The original's signature (audio, frame_rate, viterbi, padding) and framing: 'center'
    gives 4000 // 64 + 1 frames, 'same' ceil(4000 / 64)."""
    f0_hz, confidence = spectral_ops.compute_f0(sine(440.0, 4000, 0.5), 250, True, "center", capacity="tiny")
    assert f0_hz.shape == (63,) and confidence.shape == (63,)
    same, _ = spectral_ops.compute_f0(sine(440.0, 4000, 0.5), 250, padding="same", capacity="tiny")
    assert same.shape == (63,)
    np.testing.assert_allclose(np.median(same[:40]), 440.0, rtol=0.02)
    cents_error = 1200 * np.abs(np.log2(f0_hz[8:-8] / 440.0))
    assert np.median(cents_error) < 20
    assert np.median(confidence[8:-8]) > 0.5


# ------------------------------------------------------------------- tf.function, gin
def test_features_are_identical_inside_tf_function():
    audio = tf.constant(noise((2, 4000)))
    for fn in (spectral_ops.compute_mag, spectral_ops.compute_logmag, spectral_ops.compute_mel,
               spectral_ops.compute_logmel, spectral_ops.compute_mfcc, spectral_ops.compute_loudness,
               spectral_ops.compute_power, spectral_ops.compute_rms_energy):
        np.testing.assert_allclose(tf.function(fn)(audio).numpy(), fn(audio).numpy(), rtol=1e-4, atol=1e-4)


def test_unknown_batch_size_is_supported_but_the_length_must_be_static():
    features = tf.function(lambda x: (spectral_ops.compute_loudness(x), spectral_ops.compute_mfcc(x)),
                           input_signature=[tf.TensorSpec([None, 4000])])
    loudness, mfcc = features(noise((3, 4000)))
    assert loudness.shape == (3, 63) and mfcc.shape == (3, 16, 13)
    np.testing.assert_allclose(loudness.numpy(), spectral_ops.compute_loudness(noise((3, 4000))).numpy(), atol=1e-4)
    dynamic = tf.function(spectral_ops.compute_mag, input_signature=[tf.TensorSpec([None, None])])
    with pytest.raises(ValueError, match="static number of audio samples"):
        dynamic(noise((1, 4000)))


def test_registered_functions_take_gin_bindings():
    audio = sine(440.0, 4000, 0.5)
    gin.bind_parameter("test_spectral_ops/ddsp_models.spectral_ops.compute_loudness.ref_db", 30.0)
    with gin.config_scope("test_spectral_ops"):
        shifted = spectral_ops.compute_loudness(audio).numpy()
    np.testing.assert_allclose(shifted, spectral_ops.compute_loudness(audio).numpy() - 30.0, atol=1e-4)


# ------------------------------------------------------------------------ bad input
def test_bad_inputs_raise_clear_errors():
    stereo = np.zeros((1, 4000, 2), np.float32)
    with pytest.raises(ValueError, match="mono.*2 channels"):
        spectral_ops.compute_loudness(stereo)
    with pytest.raises(ValueError, match="mono"):
        spectral_ops.compute_mag(stereo)
    with pytest.raises(TypeError, match="audio"):
        spectral_ops.stft("not audio")
    with pytest.raises(TypeError, match="audio"):
        spectral_ops.compute_mel(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="audio"):
        spectral_ops.compute_mag(tf.complex(tf.zeros([1, 100]), tf.zeros([1, 100])))
    with pytest.raises(ValueError, match="frame_rate.*sample_rate"):
        spectral_ops.compute_loudness(np.zeros(4000, np.float32), frame_rate=300)
    with pytest.raises(ValueError, match="frame_rate"):
        spectral_ops.compute_power(np.zeros(4000, np.float32), frame_rate=0)
    with pytest.raises(ValueError, match="padding"):
        spectral_ops.compute_loudness(np.zeros(4000, np.float32), padding="reflect")
    with pytest.raises(ValueError, match="overlap"):
        spectral_ops.stft(np.zeros(4000, np.float32), frame_size=102, overlap=0.75)
    with pytest.raises(ValueError, match="valid"):
        spectral_ops.compute_loudness(np.zeros(100, np.float32), padding="valid")
    with pytest.raises(ValueError, match="empty"):
        spectral_ops.compute_mag(np.zeros((1, 0), np.float32))
    with pytest.raises(ValueError, match="mfcc_bins"):
        spectral_ops.compute_mfcc(np.zeros(4000, np.float32), mel_bins=8, mfcc_bins=13)
    with pytest.raises(TypeError, match="use_tf=True"):
        tf.function(lambda x: spectral_ops.compute_loudness(x, use_tf=False), autograph=False)(tf.zeros([1, 4000]))
