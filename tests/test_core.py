"""Specification of ddsp_models.core: resampling, oscillators, convolution and filter design.

Conventions are the original DDSP 3.7.0's (tests/test_golden_dsp.py checks its recorded
numbers); these tests state them from the maths.
"""
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import core

RNG = np.random.default_rng(0)


def overlap_add_reference(frames: np.ndarray, n_timesteps: int, add_endpoint: bool) -> np.ndarray:
    """Window upsampling by its definition: frame i is a Hann window of 2 * hop centred on
    sample i * hop; windows are overlap-added. With add_endpoint the last frame is repeated
    (held over a final segment, hop = n_timesteps / n_frames), else the last frame sits at
    sample n_timesteps (hop = n_timesteps / (n_frames - 1)). frames: [n_frames, channels]."""
    n_frames, channels = frames.shape
    hop = n_timesteps // (n_frames if add_endpoint else n_frames - 1)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2 * hop) / (2 * hop))  # periodic Hann
    if add_endpoint:
        frames = np.concatenate([frames, frames[-1:]], axis=0)
    # Index j of `out` is sample j - hop, so window i (centre i * hop) starts at index i * hop.
    out = np.zeros((n_timesteps + 3 * hop, channels))
    for i, value in enumerate(frames):
        out[i * hop:i * hop + 2 * hop] += window[:, None] * value[None, :]
    return out[hop:hop + n_timesteps]


# ---------------------------------------------------------------------------- conversions
def test_unit_conversions_hit_reference_values():
    np.testing.assert_allclose(core.midi_to_hz([69.0, 81.0, 57.0]).numpy(), [440.0, 880.0, 220.0], rtol=1e-6)
    np.testing.assert_allclose(core.hz_to_midi([440.0, 261.6256]).numpy(), [69.0, 60.0], atol=1e-4)
    assert core.hz_to_midi([0.0]).numpy()[0] == 0.0
    np.testing.assert_allclose(core.amplitude_to_db([1.0, 0.1]).numpy(), [0.0, -20.0], atol=1e-5)
    # dB conversions floor at -range_db (80 dB by default), also for zero.
    np.testing.assert_allclose(core.amplitude_to_db([0.0, 1e-3]).numpy(), [-80.0, -60.0], atol=1e-4)
    np.testing.assert_allclose(core.power_to_db([1e-9, 100.0], ref_db=20.0, range_db=50.0).numpy(),
                               [-50.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(core.db_to_amplitude([-20.0]).numpy(), [0.1], rtol=1e-6)
    # exp_sigmoid saturates at max_value and is threshold at -inf.
    np.testing.assert_allclose(core.exp_sigmoid([-100.0, 100.0]).numpy(), [1e-7, 2.0 + 1e-7], rtol=1e-5)


def test_frequency_scalings_cover_their_ranges():
    # softmax over 3 log-spaced bins: a peaked logit picks that bin's frequency.
    logits = np.full([1, 1, 3], -50.0, np.float32)
    for index, hz in enumerate([20.0, None, 8000.0]):
        peaked = logits.copy()
        peaked[..., index] = 50.0
        value = core.frequencies_softmax(peaked, depth=3).numpy()[0, 0, 0]
        if hz is not None:
            np.testing.assert_allclose(value, hz, rtol=1e-4)
    # Middle bin is the geometric mean on the MIDI scale.
    middle = logits.copy()
    middle[..., 1] = 50.0
    expected = core.midi_to_hz((core.hz_to_midi(20.0) + core.hz_to_midi(8000.0)) / 2.0).numpy()
    np.testing.assert_allclose(core.frequencies_softmax(middle, depth=3).numpy()[0, 0, 0], expected, rtol=1e-4)
    # sigmoid (the original's scale): saturated outputs reach hz_min and hz_max - hz_min;
    # depth consecutive channels per sinusoid partition that span and add up.
    extremes = core.frequencies_sigmoid(np.array([[[-60.0, 60.0]]], np.float32), hz_min=20.0).numpy()
    np.testing.assert_allclose(extremes[0, 0], [20.0, 7980.0], rtol=1e-4)
    deep = core.frequencies_sigmoid(np.full([2, 5, 6], 60.0, np.float32), depth=3, hz_min=20.0).numpy()
    assert deep.shape == (2, 5, 2)
    np.testing.assert_allclose(deep, 7980.0, rtol=1e-4)
    with pytest.raises(ValueError, match="freqs"):
        core.frequencies_softmax(np.zeros([1, 2, 5], np.float32), depth=2)


# ----------------------------------------------------------------------------- resampling
def test_linear_resampling_values():
    frames = np.array([[0.0, 1.0, 3.0]], np.float32)
    # add_endpoint (default): sample t reads frame position t * 3 / 6; the last frame holds.
    np.testing.assert_allclose(core.resample(frames, 6, "linear").numpy(), [[0.0, 0.5, 1.0, 2.0, 3.0, 3.0]],
                               atol=1e-6)
    np.testing.assert_allclose(core.resample(frames, 5, "linear").numpy(), [[0.0, 0.6, 1.4, 2.6, 3.0]], atol=1e-6)
    np.testing.assert_allclose(core.resample(frames, 6, "nearest").numpy(), [[0.0, 0.0, 1.0, 1.0, 3.0, 3.0]])
    # add_endpoint=False: first and last samples on the first and last frames.
    np.testing.assert_allclose(core.resample(frames, 5, "linear", add_endpoint=False).numpy(),
                               [[0.0, 0.5, 1.0, 2.0, 3.0]], atol=1e-6)
    np.testing.assert_allclose(core.resample(frames, 5, "nearest", add_endpoint=False).numpy(),
                               [[0.0, 1.0, 1.0, 3.0, 3.0]])
    # Cubic (Keys, a = -0.75) passes through the frames and is exact for a linear ramp inside.
    ramp = np.arange(8, dtype=np.float32)[np.newaxis]
    cubic = core.resample(ramp, 16, "cubic").numpy()[0]
    np.testing.assert_allclose(cubic[::2], ramp[0], atol=1e-5)
    np.testing.assert_allclose(cubic[3:12:2], ramp[0, 1:6] + 0.5, atol=1e-5)


def test_window_resampling_matches_overlap_add_definition():
    frames = RNG.normal(size=[7, 3]).astype(np.float32)
    for add_endpoint, n_timesteps in ((True, 7 * 16), (False, 6 * 16)):
        got = core.resample(frames[np.newaxis], n_timesteps, "window", add_endpoint=add_endpoint).numpy()[0]
        np.testing.assert_allclose(got, overlap_add_reference(frames, n_timesteps, add_endpoint), atol=1e-5)
    # Values on the frame grid are the frames; halfway between, the mean; a constant stays constant.
    got = core.resample(frames[np.newaxis], 7 * 16, "window").numpy()[0]
    np.testing.assert_allclose(got[::16], frames, atol=1e-6)
    np.testing.assert_allclose(got[8:-16:16], (frames[:-1] + frames[1:]) / 2, atol=1e-6)
    constant = core.resample(np.full([2, 10, 1], 0.3, np.float32), 640, "window").numpy()
    np.testing.assert_allclose(constant, 0.3, atol=1e-6)
    with pytest.raises(ValueError, match="multiple"):
        core.resample(frames[np.newaxis], 100, "window")


# ----------------------------------------------------------------------------- oscillators
def test_angular_cumsum_is_accurate_over_64000_samples():
    omega = RNG.uniform(0.05, 3.0, size=[2, 64000, 1])  # up to ~7.6 kHz at 16 kHz
    # Compare phases on the circle (float32 inputs differ from float64 ones by ~1e-7 each).
    exact32 = np.mod(np.cumsum(omega.astype(np.float32).astype(np.float64), axis=1), 2 * np.pi)
    errors = {}
    for float64 in (False, True):
        got = core.angular_cumsum(omega.astype(np.float32), float64=float64).numpy().astype(np.float64)
        errors[float64] = np.abs(np.angle(np.exp(1j * (got - exact32)))).max()
        assert np.all((got >= 0.0) & (got <= 2 * np.pi))
    assert errors[True] < 1e-5  # float64 accumulation
    assert errors[False] < 2e-2  # the original's float32 chunks of 1000 samples (sums up to 3000 rad)
    # A plain float32 running sum drifts far more (the reason angular_cumsum exists).
    naive = np.cumsum(omega.astype(np.float32), axis=1, dtype=np.float32).astype(np.float64)
    assert np.abs(np.angle(np.exp(1j * (naive - exact32)))).max() > 20 * errors[False]


def test_fast_harmonic_synthesis_equals_direct_form():
    f0 = RNG.uniform(100.0, 3000.0, size=[2, 20, 1]).astype(np.float32)
    amplitudes = RNG.uniform(0.0, 1.0, size=[2, 20, 1]).astype(np.float32)
    distribution = RNG.uniform(0.0, 1.0, size=[2, 20, 12]).astype(np.float32)
    f0_envelope = core.resample(f0, 1280)
    ratios = np.arange(1, 13, dtype=np.float32)
    for add_endpoint, n_frames in ((True, 20), (False, 21)):
        frame_amplitudes = np.concatenate([amplitudes * distribution] * 2, axis=1)[:, :n_frames]
        fast = core.windowed_harmonic_oscillator_bank(f0_envelope, frame_amplitudes, use_angular_cumsum=False,
                                                      add_endpoint=add_endpoint)
        # Direct form: upsampled amplitudes, silenced at or above Nyquist, on the shared phase.
        envelopes = core.upsample_with_windows(frame_amplitudes, 1280, add_endpoint)
        envelopes = core.remove_above_nyquist(f0_envelope * ratios, envelopes)
        direct, _ = core.harmonic_oscillator_bank(f0_envelope, envelopes, use_angular_cumsum=False)
        np.testing.assert_allclose(fast.numpy(), direct.numpy(), atol=2e-5)
    graph = tf.function(lambda *a: core.harmonic_synthesis(*a, n_samples=1280))
    np.testing.assert_allclose(graph(f0, amplitudes, None, distribution).numpy(),
                               core.harmonic_synthesis(f0, amplitudes, None, distribution, n_samples=1280).numpy(),
                               atol=1e-5)


def test_harmonic_synthesis_drops_harmonics_above_nyquist_sample_by_sample():
    # f0 glides 1000 -> 3000 Hz: harmonic 3 crosses 8 kHz halfway (at 2667 Hz).
    f0 = np.linspace(1000.0, 3000.0, 10, dtype=np.float32)[np.newaxis, :, np.newaxis]
    distribution = np.array([0.0, 0.0, 1.0], np.float32) * np.ones([1, 10, 3], np.float32)
    third = core.resample(core.get_harmonic_frequencies(f0, 3), 640).numpy()[0, :, 2]
    for use_angular_cumsum in (False, True):
        audio = core.harmonic_synthesis(f0, np.ones([1, 10, 1], np.float32), None, distribution, n_samples=640,
                                        use_angular_cumsum=use_angular_cumsum).numpy()[0]
        assert np.all(audio[third >= 8001.0] == 0.0)
        assert np.abs(audio[third < 7900.0]).max() > 0.9


def test_wavetable_synthesis_equals_resampled_linear_lookup():
    f0 = RNG.uniform(50.0, 900.0, size=[2, 10, 1]).astype(np.float32)
    amplitudes = RNG.uniform(0.1, 1.0, size=[2, 10, 1]).astype(np.float32)
    tables = RNG.normal(size=[2, 10, 32]).astype(np.float32)
    got = core.wavetable_synthesis(f0, amplitudes, tables, n_samples=640).numpy()
    # Phase in cycles: the running sum before each sample (0 at the first), wrapped to [0, 1).
    phase = tf.cumsum(core.resample(f0, 640) / 16000.0, axis=1, exclusive=True) % 1.0
    reference = core.linear_lookup(phase, core.resample(tables, 640)) * core.resample(amplitudes, 640, "window")[..., 0]
    np.testing.assert_allclose(got, reference.numpy(), atol=1e-5)


def test_variable_length_delay_shifts_by_whole_samples():
    audio = RNG.normal(size=[1, 200]).astype(np.float32)
    delayed = core.variable_length_delay(np.full([1, 200, 1], 0.25, np.float32), audio, max_length=40).numpy()
    np.testing.assert_allclose(delayed[0, 10:], audio[0, :-10], atol=1e-6)
    np.testing.assert_array_equal(delayed[0, :10], 0.0)
    # Half way between whole delays: the mean of the two neighbours.
    delayed = core.variable_length_delay(np.full([1, 200, 1], 10.5 / 40, np.float32), audio, max_length=40).numpy()
    np.testing.assert_allclose(delayed[0, 11:], (audio[0, 1:-10] + audio[0, :-11]) / 2, atol=1e-6)


# ----------------------------------------------------------------------------- convolution
def test_next_fast_fft_length_is_smallest_5_smooth_length():
    def smooth(n):
        for p in (2, 3, 5):
            while n % p == 0:
                n //= p
        return n == 1
    for n in [1, 7, 100, 191, 257, 1000, 4097, 111999]:
        expected = next(m for m in range(n, 2 * n + 2) if smooth(m))
        assert core.next_fast_fft_length(n) == expected


def test_fft_convolve_matches_numpy_convolve_for_one_impulse_response():
    audio = RNG.normal(size=[2, 1000]).astype(np.float32)
    ir = RNG.normal(size=[2, 77]).astype(np.float32)
    full = np.stack([np.convolve(a, h) for a, h in zip(audio, ir)])
    np.testing.assert_allclose(core.fft_convolve(audio, ir, padding="valid", delay_compensation=0).numpy(), full,
                               atol=1e-4)
    np.testing.assert_allclose(core.fft_convolve(audio, ir, delay_compensation=0).numpy(), full[:, :1000], atol=1e-4)
    # By default both paddings skip (ir_size - 1) // 2 - 1 samples, the original's delay
    # compensation ('valid' then ends in zeros).
    np.testing.assert_allclose(core.fft_convolve(audio, ir).numpy(), full[:, 37:1037], atol=1e-4)
    np.testing.assert_allclose(core.fft_convolve(audio, ir, padding="valid").numpy()[:, :-37], full[:, 37:],
                               atol=1e-4)
    # One response shared by the batch.
    shared = np.stack([np.convolve(a, ir[0]) for a in audio])
    np.testing.assert_allclose(core.fft_convolve(audio, ir[:1], padding="valid", delay_compensation=0).numpy(),
                               shared, atol=1e-4)


def test_fft_convolve_with_time_varying_responses_filters_each_block():
    audio = RNG.normal(size=[1, 400]).astype(np.float32)
    irs = RNG.normal(size=[1, 4, 31]).astype(np.float32)
    expected = np.zeros(400 + 31 - 1)
    for i in range(4):
        expected[i * 100:i * 100 + 130] += np.convolve(audio[0, i * 100:(i + 1) * 100], irs[0, i])
    valid = dict(padding="valid", delay_compensation=0)
    np.testing.assert_allclose(core.fft_convolve(audio, irs, **valid).numpy()[0], expected, atol=1e-4)
    graph = tf.function(lambda a, h: core.fft_convolve(a, h, **valid))
    np.testing.assert_allclose(graph(audio, irs).numpy()[0], expected, atol=1e-4)
    # Audio that is not a multiple of the frames is cut into ceil(n / n_frames) blocks.
    expected = np.zeros(399 + 31 - 1)
    for i in range(4):
        expected[i * 100:i * 100 + 130] += np.convolve(audio[0, i * 100:min((i + 1) * 100, 399)], irs[0, i],
                                                         mode="full")[:130]
    np.testing.assert_allclose(core.fft_convolve(audio[:, :399], irs, **valid).numpy()[0], expected, atol=1e-4)
    with pytest.raises(ValueError, match="split"):
        core.fft_convolve(audio[:, :5], irs)  # blocks of 2 samples make 3 frames, not 4


def test_flat_frequency_response_gives_an_impulse_at_the_original_positions():
    """A flat response is a unit impulse at time 0. The full window (window_size 0: length
    2 (n_frequencies - 1)) puts time 0 at index size // 2; a shorter window of w samples
    keeps 2 ((w + 1) // 2) - 1 taps with time 0 at index (w + 1) // 2 - 2, scaled by sample
    (w + 1) // 2 of TF's periodic Hann window (the original's layout)."""
    for window_size, n_frequencies, size, peak in [(0, 65, 128, 64), (257, 257, 257, 127), (64, 129, 63, 30)]:
        ir = core.frequency_impulse_response(np.ones([1, 2, n_frequencies], np.float32), window_size).numpy()
        assert ir.shape[-1] == size
        window_value = 1.0 if window_size == 0 else \
            tf.signal.hann_window(window_size).numpy()[(window_size + 1) // 2]
        expected = np.zeros(size)
        expected[peak] = window_value
        np.testing.assert_allclose(ir[0, 0], expected, atol=1e-6)
        np.testing.assert_allclose(ir[0, 1], expected, atol=1e-6)
    # fft_convolve compensates (size - 1) // 2 - 1 samples: exact for odd windows, two samples
    # short for the full (even) one, so a flat filter delays the audio by 2 samples there.
    audio = RNG.normal(size=[1, 640]).astype(np.float32)
    flat = np.ones([1, 10, 65], np.float32)
    gain = tf.signal.hann_window(65).numpy()[33]
    np.testing.assert_allclose(core.frequency_filter(audio, flat, 65).numpy(), gain * audio, atol=1e-5)
    np.testing.assert_allclose(core.frequency_filter(audio, flat).numpy()[:, 2:], audio[:, :-2], atol=1e-5)


def test_frequency_filter_low_pass_attenuates_high_sine():
    t = np.arange(16000) / 16000.0
    low = np.sin(2 * np.pi * 500.0 * t).astype(np.float32)[np.newaxis]
    high = np.sin(2 * np.pi * 6000.0 * t).astype(np.float32)[np.newaxis]
    magnitudes = (np.arange(129) < 32).astype(np.float32)[np.newaxis, np.newaxis] * np.ones([1, 100, 1], np.float32)
    rms = lambda x: float(np.sqrt(np.mean(x[:, 500:-500] ** 2)))  # noqa: E731
    assert rms(core.frequency_filter(low, magnitudes, 257).numpy()) == pytest.approx(rms(low), rel=0.02)
    assert rms(core.frequency_filter(high, magnitudes, 257).numpy()) < 1e-3 * rms(high)


# ---------------------------------------------------------------------------------- errors
def test_bad_inputs_raise_errors_naming_the_argument():
    with pytest.raises(TypeError, match="impulse_response"):
        core.fft_convolve(np.zeros([1, 10], np.float32), np.array(["a", "b"]))
    with pytest.raises(TypeError, match="audio"):
        core.fft_convolve(tf.constant([["x"]]), np.zeros([1, 3], np.float32))
    with pytest.raises(ValueError, match="magnitudes"):
        core.frequency_impulse_response(np.zeros([2], np.float32))
    with pytest.raises(TypeError, match="frequencies"):
        core.get_harmonic_frequencies(tf.constant([True]), 3)
    assert math.isclose(core.tf_float32(np.int64(3)).numpy(), 3.0)
