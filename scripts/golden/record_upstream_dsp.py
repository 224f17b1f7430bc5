"""Records golden outputs of the original DDSP 3.7.0 signal-processing modules.

Run with the ORIGINAL library's interpreter (never the project's):

    bash ../shared/upstream/setup_venv.sh /work/upstream-venv
    /work/upstream-venv/bin/python scripts/golden/record_upstream_dsp.py [OUT_DIR]

It feeds fixed, seeded float32 inputs through functions and classes of `ddsp.core`,
`ddsp.spectral_ops`, `ddsp.synths`, `ddsp.effects`, `ddsp.processors`, `ddsp.losses` and
`ddsp.dags`, and writes (default OUT_DIR: tests/data/golden):

  manifest.json        one entry per case: what was called (dotted name, constructor and
                       call arguments, weights, method) and where its arrays are;
  <module>.npz         the inputs and outputs of that module's cases (float32);
  public_names.json    the original's public names per module.

tests/test_golden_dsp.py replays every case on ddsp_models and compares. The recording
machinery is in golden_recorder.py (next to this script); the cases are here. Random draws
(`tf.random.uniform`: filtered noise, noise impulse responses) are recorded in call order
and replayed by the test, so random processors are compared exactly too.
"""
import os
import sys

import numpy as np
import tensorflow as tf
from golden_recorder import Array, Recorder  # scripts/golden (the script's own folder)


# ------------------------------------------------------------------------------------ inputs
def smooth(rng, shape, low, high, n_knots=6):
    """Smooth random curves along axis 1 (cubic-free: linear interpolation of knots)."""
    batch, n = shape[0], shape[1]
    rest = shape[2:]
    knots = rng.uniform(low, high, size=(batch, n_knots) + tuple(rest))
    t = np.linspace(0, n_knots - 1, n)
    out = np.empty(shape)
    for b in range(batch):
        flat = knots[b].reshape(n_knots, -1)
        out[b] = np.stack([np.interp(t, np.arange(n_knots), flat[:, j]) for j in range(flat.shape[1])],
                          axis=-1).reshape((n,) + tuple(rest))
    return out.astype(np.float32)


def test_audio(rng, batch, n_samples, sample_rate=16000, silent_tail=False):
    """Sum of a few sines plus a little noise, amplitude about 0.5."""
    t = np.arange(n_samples) / sample_rate
    audio = np.zeros((batch, n_samples))
    for b in range(batch):
        for f, a in zip(rng.uniform(80, 3000, 4), rng.uniform(0.05, 0.2, 4)):
            audio[b] += a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        audio[b] += 0.01 * rng.standard_normal(n_samples)
    if silent_tail:
        audio[:, n_samples // 2:] = 0.0
    return audio.astype(np.float32)


# ------------------------------------------------------------------------------------- cases
def record_core(r: Recorder):
    rng = r.rng
    notes = np.array([[0.0, 21.5, 60.0, 69.0, 127.0, -3.0]], np.float32)
    r.case("midi_to_hz", "core.midi_to_hz", [notes])
    r.case("midi_to_hz_silence", "core.midi_to_hz", [notes], {"midi_zero_silence": True})
    hz = np.array([[0.0, 1e-6, 8.18, 27.5, 440.0, 1000.0, 8000.0, -5.0]], np.float32)
    r.case("hz_to_midi", "core.hz_to_midi", [hz])
    unit = np.array([[-0.2, 0.0, 0.3, 0.5, 1.0, 1.3]], np.float32)
    r.case("unit_to_midi", "core.unit_to_midi", [unit])
    r.case("unit_to_midi_clip", "core.unit_to_midi", [unit], {"midi_min": 10.0, "midi_max": 100.0, "clip": True})
    r.case("midi_to_unit", "core.midi_to_unit", [notes], {"clip": True})
    r.case("unit_to_hz", "core.unit_to_hz", [unit], {"hz_min": 20.0, "hz_max": 8000.0})
    r.case("unit_to_hz_clip", "core.unit_to_hz", [unit], {"hz_min": 20.0, "hz_max": 8000.0, "clip": True})
    r.case("hz_to_unit", "core.hz_to_unit", [hz], {"hz_min": 20.0, "hz_max": 8000.0, "clip": True})
    amps = np.array([[0.0, 1e-6, 1e-3, 0.1, 1.0, 2.0]], np.float32)
    r.case("amplitude_to_db", "core.amplitude_to_db", [amps])
    r.case("amplitude_to_db_ref", "core.amplitude_to_db", [amps, 10.0, 60.0])
    r.case("amplitude_to_db_np", "core.amplitude_to_db", [amps], {"use_tf": False}, numpy_inputs=True)
    r.case("power_to_db", "core.power_to_db", [amps])
    r.case("power_to_db_ref", "core.power_to_db", [amps], {"ref_db": -5.0, "range_db": 40.0})
    r.case("power_to_db_np", "core.power_to_db", [amps], {"use_tf": False}, numpy_inputs=True)
    db = np.array([[-120.0, -80.0, -6.0, 0.0, 3.0, 20.0]], np.float32)
    r.case("db_to_amplitude", "core.db_to_amplitude", [db])
    r.case("db_to_power", "core.db_to_power", [db])
    x = np.array([[-1.0, 0.0, 1e-10, 1e-5, 0.5, 2.0]], np.float32)
    r.case("safe_log", "core.safe_log", [x])
    r.case("safe_divide", "core.safe_divide", [np.array([[1.0, -2.0, 3.0, 0.0, 5.0, 1.0]], np.float32),
                                               np.array([[0.0, 1e-9, -1e-9, 0.0, 2.0, -4.0]], np.float32)])
    r.case("logb", "core.logb", [x], {"base": 3.0})
    r.case("log10", "core.log10", [x])
    r.case("nan_to_num", "core.nan_to_num", [np.array([[np.nan, 1.0, -2.0]], np.float32)], {"value": 7.0})
    logits = rng.normal(0, 3, (2, 7, 5)).astype(np.float32)
    r.case("exp_sigmoid", "core.exp_sigmoid", [logits])
    r.case("exp_sigmoid_args", "core.exp_sigmoid", [logits], {"exponent": 5.0, "max_value": 1.5, "threshold": 1e-3})
    r.case("sym_exp_sigmoid", "core.sym_exp_sigmoid", [logits], {"width": 6.0})
    r.case("log_scale", "core.log_scale", [np.tanh(logits)], {"min_x": 20.0, "max_x": 8000.0})
    r.case("soft_limit", "core.soft_limit", [logits], {"x_min": -1.0, "x_max": 2.0})
    r.case("gradient_reversal", "core.gradient_reversal", [logits])
    hz_grid = np.array([[20.0, 100.0, 440.0, 1000.0, 4000.0, 8000.0]], np.float32)
    for fn in ("hz_to_bark", "hz_to_mel", "hz_to_erb"):
        r.case(fn, f"core.{fn}", [hz_grid])
    r.case("bark_to_hz", "core.bark_to_hz", [np.array([[1.0, 5.0, 10.0, 20.0]], np.float32)])
    r.case("mel_to_hz", "core.mel_to_hz", [np.array([[100.0, 500.0, 1500.0, 2800.0]], np.float32)])
    r.case("diff_time", "core.diff", [logits], {"axis": 1})
    r.case("diff_last", "core.diff", [logits])
    r.case("pad_axis", "core.pad_axis", [logits], {"padding": [2, 3], "axis": 1})
    r.case("center_crop", "core.center_crop", [rng.normal(size=(2, 100)).astype(np.float32), 16])

    # Frequency scaling of network outputs.
    r.case("frequencies_softmax_d1", "core.frequencies_softmax", [rng.normal(size=(2, 5, 3)).astype(np.float32)])
    r.case("frequencies_softmax_d4", "core.frequencies_softmax",
           [rng.normal(0, 2, (2, 5, 12)).astype(np.float32)], {"depth": 4, "hz_min": 30.0, "hz_max": 6000.0})
    r.case("frequencies_softmax_4d", "core.frequencies_softmax", [rng.normal(0, 2, (2, 5, 3, 4)).astype(np.float32)])
    r.case("frequencies_sigmoid_d1", "core.frequencies_sigmoid", [rng.normal(0, 2, (2, 5, 3)).astype(np.float32)])
    r.case("frequencies_sigmoid_d3", "core.frequencies_sigmoid", [rng.normal(0, 2, (2, 5, 9)).astype(np.float32)],
           {"depth": 3, "hz_min": 20.0, "hz_max": 8000.0})
    r.case("frequencies_critical_bands_bark", "core.frequencies_critical_bands",
           [rng.normal(0, 1, (2, 5, 8)).astype(np.float32)])
    r.case("frequencies_critical_bands_mel", "core.frequencies_critical_bands",
           [rng.normal(0, 1, (2, 5, 16)).astype(np.float32)], {"depth": 2, "scale": "mel", "bandwidth_scale": 2.0})

    # Resampling.
    frames = r.keep("core", "frames_2x10x3", rng.normal(size=(2, 10, 3)))
    for method in ("linear", "nearest", "cubic"):
        for endpoint in (True, False):
            r.case(f"resample_{method}_up_{endpoint}", "core.resample", [frames, 64],
                   {"method": method, "add_endpoint": endpoint})
        r.case(f"resample_{method}_down", "core.resample", [rng.normal(size=(2, 50, 2)).astype(np.float32), 7],
               {"method": method})
    r.case("resample_window_True", "core.resample", [frames, 80], {"method": "window"})
    r.case("resample_window_False", "core.resample", [frames, 72], {"method": "window", "add_endpoint": False})
    r.case("resample_1d", "core.resample", [rng.normal(size=(12,)).astype(np.float32), 40])
    r.case("resample_2d", "core.resample", [rng.normal(size=(2, 12)).astype(np.float32), 40],
           {"add_endpoint": False})
    r.case("resample_4d", "core.resample", [rng.normal(size=(2, 10, 4, 2)).astype(np.float32), 40])
    r.case("upsample_with_windows", "core.upsample_with_windows", [frames, 80])
    r.case("upsample_with_windows_noend", "core.upsample_with_windows", [frames, 90], {"add_endpoint": False})

    # Synthesis helpers.
    f0 = r.keep("core", "f0_2x5x1", smooth(rng, (2, 5, 1), 100, 900))
    sin_freqs = (np.asarray(r.arrays["core"]["f0_2x5x1"]) * np.arange(1, 9)[None, None, :]
                 * rng.uniform(0.97, 1.03, (2, 5, 8))).astype(np.float32)
    r.case("sinusoidal_to_harmonic", "core.sinusoidal_to_harmonic",
           [rng.uniform(0, 1, (2, 5, 8)).astype(np.float32), sin_freqs, f0], {"n_harmonics": 10})
    r.case("sinusoidal_to_harmonic_norm", "core.sinusoidal_to_harmonic",
           [rng.uniform(0, 1, (2, 5, 8)).astype(np.float32), sin_freqs, f0],
           {"n_harmonics": 12, "harmonic_width": 0.3, "normalize": True, "sample_rate": 8000})
    r.case("harmonic_to_sinusoidal", "core.harmonic_to_sinusoidal",
           [rng.uniform(0, 1, (2, 5, 1)).astype(np.float32), rng.uniform(0, 1, (2, 5, 20)).astype(np.float32), f0])
    omega = smooth(rng, (1, 8000, 1), 0.01, 2.5)
    r.case("angular_cumsum", "core.angular_cumsum", [omega], note="phase over 8000 samples")
    env_f = smooth(rng, (2, 50, 6), 100, 9000)
    env_a = rng.uniform(0, 1, (2, 50, 6)).astype(np.float32)
    r.case("remove_above_nyquist", "core.remove_above_nyquist", [env_f, env_a])
    hd = r.keep("core", "hd_2x5x20", rng.uniform(0, 1, (2, 5, 20)))
    r.case("normalize_harmonics", "core.normalize_harmonics", [hd, f0, 16000])
    r.case("normalize_harmonics_no_sr", "core.normalize_harmonics", [hd, f0])
    r.case("get_harmonic_frequencies", "core.get_harmonic_frequencies", [f0, 7])
    freq_env = r.keep("core", "freq_env_2x2000x3", smooth(rng, (2, 2000, 3), 50, 9000))
    amp_env = r.keep("core", "amp_env_2x2000x3", smooth(rng, (2, 2000, 3), 0, 1))
    r.case("oscillator_bank", "core.oscillator_bank", [freq_env, amp_env])
    r.case("oscillator_bank_angular", "core.oscillator_bank", [freq_env, amp_env],
           {"use_angular_cumsum": True, "sample_rate": 22050})
    r.case("oscillator_bank_unsummed", "core.oscillator_bank", [freq_env, amp_env], {"sum_sinusoids": False})
    r.case("harmonic_oscillator_bank", "core.harmonic_oscillator_bank",
           [r.keep("core", "f0_env_2x2000x1", smooth(rng, (2, 2000, 1), 100, 600)),
            r.keep("core", "amp_env_2x2000x5", smooth(rng, (2, 2000, 5), 0, 1)),
            rng.uniform(0, 6, (2, 1, 1)).astype(np.float32)], {"use_angular_cumsum": False})
    r.case("harmonic_oscillator_bank_angular", "core.harmonic_oscillator_bank",
           [Array("f0_env_2x2000x1"), Array("amp_env_2x2000x5")])
    r.case("streaming_harmonic_synthesis", "core.streaming_harmonic_synthesis",
           [smooth(rng, (2, 16, 1), 200, 3000), rng.uniform(0, 1, (2, 16, 1)).astype(np.float32),
            rng.uniform(0, 1, (2, 16, 8)).astype(np.float32), rng.uniform(0, 6, (2, 1, 1)).astype(np.float32)],
           {"n_samples": 1024})

    f0_50 = r.keep("core", "f0_2x50x1", smooth(rng, (2, 50, 1), 100, 1200))
    amp_50 = r.keep("core", "amp_2x50x1", rng.uniform(0, 1, (2, 50, 1)))
    hd_50 = r.keep("core", "hd_2x50x20", rng.uniform(0, 1, (2, 50, 20)) / 20)
    r.case("harmonic_synthesis", "core.harmonic_synthesis", [f0_50, amp_50],
           {"harmonic_distribution": hd_50, "n_samples": 4000})
    r.case("harmonic_synthesis_linear_angular", "core.harmonic_synthesis", [f0_50, amp_50],
           {"harmonic_distribution": hd_50, "n_samples": 4000, "amp_resample_method": "linear",
            "use_angular_cumsum": True})
    r.case("harmonic_synthesis_shifts", "core.harmonic_synthesis", [f0_50, amp_50],
           {"harmonic_shifts": rng.uniform(-0.02, 0.02, (2, 50, 20)).astype(np.float32),
            "harmonic_distribution": hd_50, "n_samples": 4000})
    r.case("harmonic_synthesis_single", "core.harmonic_synthesis", [f0_50, amp_50], {"n_samples": 4000})
    f0_long = r.keep("core", "f0_1x1000x1", smooth(rng, (1, 1000, 1), 80, 700, n_knots=12))
    amp_long = r.keep("core", "amp_1x1000x1", smooth(rng, (1, 1000, 1), 0.1, 1.0, n_knots=12))
    hd_long = r.keep("core", "hd_1x1000x40", rng.uniform(0, 1, (1, 1000, 40)) / 40)
    r.case("harmonic_synthesis_64000", "core.harmonic_synthesis", [f0_long, amp_long],
           {"harmonic_distribution": hd_long, "n_samples": 64000}, note="phase over 64000 samples")

    r.case("linear_lookup", "core.linear_lookup",
           [rng.uniform(0, 1, (2, 200, 1)).astype(np.float32), rng.normal(size=(2, 200, 16)).astype(np.float32)])
    r.case("linear_lookup_2d_table", "core.linear_lookup",
           [rng.uniform(0, 1, (2, 200, 1)).astype(np.float32), rng.normal(size=(2, 32)).astype(np.float32)])
    r.case("harmonic_distribution_to_wavetable", "core.harmonic_distribution_to_wavetable",
           [rng.uniform(0, 1, (2, 5, 10)).astype(np.float32)], {"n_wavetable": 64})
    f0_20 = r.keep("core", "f0_2x20x1", smooth(rng, (2, 20, 1), 100, 800))
    amp_20 = r.keep("core", "amp_2x20x1", rng.uniform(0, 1, (2, 20, 1)))
    r.case("wavetable_synthesis_one_table", "core.wavetable_synthesis",
           [f0_20, amp_20, rng.normal(size=(2, 32)).astype(np.float32)], {"n_samples": 2000})
    r.case("wavetable_synthesis_frames", "core.wavetable_synthesis",
           [f0_20, amp_20, rng.normal(size=(2, 20, 32)).astype(np.float32)], {"n_samples": 2000})
    phase = rng.uniform(0, 1, (2, 2000, 1))
    phase[:, :10, 0] = [0.0, 1.0, 0.5, 63.5 / 64, 0.999, 1e-4, 0.25, 1.0, 0.0, 0.75]
    r.case("variable_length_delay", "core.variable_length_delay",
           [phase.astype(np.float32), test_audio(rng, 2, 2000)], {"max_length": 64})

    # Convolution and filters.
    r.case("get_fft_size", "core.get_fft_size", [100, 50])
    r.case("get_fft_size_fast", "core.get_fft_size", [100, 50, False])
    r.case("crop_and_compensate_delay", "core.crop_and_compensate_delay",
           [rng.normal(size=(2, 300)).astype(np.float32), 200, 51, "same", -1])
    r.case("crop_and_compensate_delay_valid", "core.crop_and_compensate_delay",
           [rng.normal(size=(2, 300)).astype(np.float32), 200, 51, "valid", 3])
    audio = r.keep("core", "audio_2x1000", test_audio(rng, 2, 1000))
    ir = r.keep("core", "ir_2x65", rng.normal(0, 0.2, (2, 65)))
    r.case("fft_convolve", "core.fft_convolve", [audio, ir])
    r.case("fft_convolve_valid", "core.fft_convolve", [audio, ir], {"padding": "valid"})
    r.case("fft_convolve_delay0", "core.fft_convolve", [audio, ir], {"delay_compensation": 0})
    r.case("fft_convolve_delay7", "core.fft_convolve", [audio, ir], {"delay_compensation": 7})
    r.case("fft_convolve_broadcast", "core.fft_convolve", [audio, rng.normal(size=(1, 65)).astype(np.float32)])
    ir_tv = r.keep("core", "ir_2x10x33", rng.normal(0, 0.2, (2, 10, 33)))
    r.case("fft_convolve_time_varying", "core.fft_convolve", [audio, ir_tv])
    r.case("fft_convolve_time_varying_valid", "core.fft_convolve", [audio, ir_tv], {"padding": "valid"})
    r.case("fft_convolve_uneven_frames", "core.fft_convolve", [test_audio(rng, 2, 1003), ir_tv])
    ir_zero_phase = r.keep("core", "ir_2x4x64", rng.normal(size=(2, 4, 64)))
    r.case("apply_window_full", "core.apply_window_to_impulse_response", [ir_zero_phase])
    r.case("apply_window_33", "core.apply_window_to_impulse_response", [ir_zero_phase, 33])
    r.case("apply_window_32", "core.apply_window_to_impulse_response", [ir_zero_phase, 32])
    r.case("apply_window_causal", "core.apply_window_to_impulse_response", [ir_zero_phase, 21, True])
    mags = r.keep("core", "mags_2x4x65", rng.uniform(0, 1, (2, 4, 65)))
    r.case("frequency_impulse_response", "core.frequency_impulse_response", [mags])
    r.case("frequency_impulse_response_65", "core.frequency_impulse_response", [mags, 65])
    r.case("frequency_impulse_response_64", "core.frequency_impulse_response", [mags, 64])
    r.case("frequency_impulse_response_2d", "core.frequency_impulse_response",
           [rng.uniform(0, 1, (2, 33)).astype(np.float32), 17])
    mags_tv = r.keep("core", "mags_2x10x33", rng.uniform(0, 1, (2, 10, 33)))
    r.case("frequency_filter", "core.frequency_filter", [audio, mags_tv])
    r.case("frequency_filter_31", "core.frequency_filter", [audio, mags_tv, 31])
    r.case("frequency_filter_valid", "core.frequency_filter", [audio, mags_tv], {"window_size": 31, "padding": "valid"})
    r.case("sinc", "core.sinc", [np.array([[-2.5, -1.0, 0.0, 1e-25, 0.3, 1.0]], np.float32)])
    cutoff = rng.uniform(0.1, 0.9, (2, 3, 1)).astype(np.float32)
    r.case("sinc_impulse_response", "core.sinc_impulse_response", [cutoff], {"window_size": 64})
    r.case("sinc_impulse_response_hz_hp", "core.sinc_impulse_response", [cutoff * 8000.0],
           {"window_size": 31, "sample_rate": 16000, "high_pass": True})
    r.case("sinc_filter", "core.sinc_filter", [audio, rng.uniform(500, 6000, (2, 10, 1)).astype(np.float32)],
           {"window_size": 64, "sample_rate": 16000})


def record_spectral_ops(r: Recorder):
    rng = r.rng
    audio = r.keep("spectral_ops", "audio_2x4000", test_audio(rng, 2, 4000))
    quiet = r.keep("spectral_ops", "audio_2x4000_silent_tail", test_audio(rng, 2, 4000, silent_tail=True))
    short = r.keep("spectral_ops", "audio_2x1000", test_audio(rng, 2, 1000))
    r.case("stft", "spectral_ops.stft", [short], {"frame_size": 512})
    r.case("stft_no_pad", "spectral_ops.stft", [short], {"frame_size": 256, "pad_end": False})
    r.case("stft_400", "spectral_ops.stft", [short], {"frame_size": 400, "overlap": 0.5})
    r.case("stft_np", "spectral_ops.stft_np", [Array("audio_2x1000", True)], {"frame_size": 256})
    r.case("stft_np_1d", "spectral_ops.stft_np", [test_audio(rng, 1, 1000)[0]],
           {"frame_size": 128, "pad_end": False}, numpy_inputs=True)
    r.case("compute_mag", "spectral_ops.compute_mag", [audio])
    r.case("compute_mag_64", "spectral_ops.compute_mag", [audio, 64])
    r.case("compute_logmag", "spectral_ops.compute_logmag", [quiet], {"size": 128, "overlap": 0.5})
    r.case("compute_mel", "spectral_ops.compute_mel", [audio])
    r.case("compute_logmel", "spectral_ops.compute_logmel", [quiet], {"bins": 32, "fft_size": 512})
    r.case("compute_mfcc", "spectral_ops.compute_mfcc", [audio])
    r.case("compute_mfcc_args", "spectral_ops.compute_mfcc", [quiet],
           {"fft_size": 512, "mel_bins": 64, "mfcc_bins": 20, "overlap": 0.5})
    for padding in ("center", "same", "valid"):
        r.case(f"get_framed_lengths_{padding}", "spectral_ops.get_framed_lengths", [4000, 512, 64, padding])
        r.case(f"pad_{padding}", "spectral_ops.pad", [short, 512, 64, padding])
    r.case("pad_1d", "spectral_ops.pad", [test_audio(rng, 1, 1000)[0], 256, 100])
    r.case("pad_reflect", "spectral_ops.pad", [short, 128, 64], {"mode": "REFLECT"})
    r.case("compute_rms_energy", "spectral_ops.compute_rms_energy", [quiet])
    r.case("compute_rms_energy_same", "spectral_ops.compute_rms_energy", [audio, 16000, 100, 1024, "same"])
    r.case("compute_power", "spectral_ops.compute_power", [quiet])
    r.case("compute_power_args", "spectral_ops.compute_power", [audio, 16000, 250, 1024, 3.0, 50.0, "valid"])
    r.case("compute_power_same", "spectral_ops.compute_power", [quiet], {"padding": "same", "frame_size": 2048})
    audio_1s = r.keep("spectral_ops", "audio_1x16000", test_audio(rng, 1, 16000) * 0.2)
    r.case("compute_loudness", "spectral_ops.compute_loudness", [audio_1s])
    r.case("compute_loudness_2048", "spectral_ops.compute_loudness", [audio_1s], {"n_fft": 2048})
    r.case("compute_loudness_same", "spectral_ops.compute_loudness", [quiet], {"padding": "same", "range_db": 120.0})
    r.case("compute_loudness_valid", "spectral_ops.compute_loudness", [quiet],
           {"padding": "valid", "ref_db": 20.0, "frame_rate": 100})
    r.case("compute_loudness_np", "spectral_ops.compute_loudness", [Array("audio_2x4000_silent_tail", True)],
           {"use_tf": False})
    r.case("compute_loudness_1d", "spectral_ops.compute_loudness", [test_audio(rng, 1, 4000)[0]])
    vec = rng.normal(size=(2, 100)).astype(np.float32)
    r.case("pad_or_trim_pad", "spectral_ops.pad_or_trim_to_expected_length", [vec, 110],
           {"pad_value": -1.0}, numpy_inputs=True)
    r.case("pad_or_trim_trim", "spectral_ops.pad_or_trim_to_expected_length", [vec[0], 95], numpy_inputs=True)
    r.case("pad_or_trim_tf", "spectral_ops.pad_or_trim_to_expected_length", [vec, 104], {"use_tf": True})


def record_synths(r: Recorder):
    rng = r.rng
    amps = r.keep("synths", "amps_2x50x1", rng.normal(0, 2, (2, 50, 1)))
    hd = r.keep("synths", "hd_2x50x20", rng.normal(0, 2, (2, 50, 20)))
    f0 = r.keep("synths", "f0_2x50x1", smooth(rng, (2, 50, 1), 100, 1000))
    r.case("harmonic", "synths.Harmonic", [amps, hd, f0], init={"n_samples": 2000})
    r.case("harmonic_controls", "synths.Harmonic", [amps, hd, f0], init={"n_samples": 2000}, method="get_controls")
    r.case("harmonic_options", "synths.Harmonic", [amps, hd, f0],
           init={"n_samples": 2000, "sample_rate": 8000, "normalize_below_nyquist": False,
                 "amp_resample_method": "linear", "use_angular_cumsum": True})
    r.case("harmonic_no_scale", "synths.Harmonic",
           [rng.uniform(0, 1, (2, 50, 1)).astype(np.float32), rng.uniform(0, 1, (2, 50, 20)).astype(np.float32), f0],
           init={"n_samples": 2000, "scale_fn": None})
    mags = r.keep("synths", "mags_2x50x65", rng.normal(0, 2, (2, 50, 65)))
    r.case("filtered_noise", "synths.FilteredNoise", [mags], init={"n_samples": 2000})
    r.case("filtered_noise_small_window", "synths.FilteredNoise", [mags],
           init={"n_samples": 2000, "window_size": 33, "initial_bias": -2.0})
    r.case("filtered_noise_controls", "synths.FilteredNoise", [mags], init={"n_samples": 2000},
           method="get_controls")
    r.case("wavetable", "synths.Wavetable",
           [rng.normal(size=(2, 20, 1)).astype(np.float32), rng.normal(size=(2, 20, 32)).astype(np.float32),
            smooth(rng, (2, 20, 1), 100, 800)], init={"n_samples": 2000})
    r.case("sinusoidal", "synths.Sinusoidal",
           [rng.normal(size=(2, 50, 4)).astype(np.float32), rng.normal(0, 2, (2, 50, 4)).astype(np.float32)],
           init={"n_samples": 2000})
    r.case("sinusoidal_controls", "synths.Sinusoidal",
           [rng.normal(size=(2, 50, 4)).astype(np.float32), rng.normal(0, 2, (2, 50, 4)).astype(np.float32)],
           init={"n_samples": 2000}, method="get_controls")
    r.case("sinusoidal_hz", "synths.Sinusoidal",
           [rng.uniform(0, 1, (2, 50, 4)).astype(np.float32), smooth(rng, (2, 50, 4), 100, 9000)],
           init={"n_samples": 2000, "amp_scale_fn": None, "freq_scale_fn": None, "amp_resample_method": "linear"})
    r.case("tensor_to_audio", "synths.TensorToAudio", [rng.normal(size=(2, 100, 1)).astype(np.float32)], init={})


def record_effects(r: Recorder):
    rng = r.rng
    audio = r.keep("effects", "audio_2x2000", test_audio(rng, 2, 2000))
    ir = rng.normal(0, 0.1, (2, 1000)).astype(np.float32) * np.exp(-np.arange(1000) / 200.0)[None]
    r.case("reverb", "effects.Reverb", [audio, ir.astype(np.float32)], init={})
    r.case("reverb_wet_3d", "effects.Reverb", [audio, ir[..., None].astype(np.float32)], init={"add_dry": False})
    r.case("reverb_trainable", "effects.Reverb", [audio], init={"trainable": True, "reverb_length": 1000},
           weights={"ir": rng.normal(0, 0.05, 1000).astype(np.float32)})
    gain = rng.normal(size=(2, 1)).astype(np.float32)
    decay = rng.normal(size=(2, 1)).astype(np.float32)
    r.case("exp_decay_reverb", "effects.ExpDecayReverb", [audio, gain, decay], init={"reverb_length": 1000})
    r.case("exp_decay_reverb_trainable", "effects.ExpDecayReverb", [audio],
           init={"trainable": True, "reverb_length": 1000, "add_dry": False},
           weights={"gain": np.array([-1.0], np.float32), "decay": np.array([1.5], np.float32)})
    r.case("filtered_noise_reverb", "effects.FilteredNoiseReverb",
           [audio, rng.normal(size=(2, 10, 16)).astype(np.float32)],
           init={"reverb_length": 1000, "n_frames": 10, "n_filter_banks": 16})
    r.case("filtered_noise_reverb_trainable", "effects.FilteredNoiseReverb", [audio],
           init={"trainable": True, "reverb_length": 1000, "n_frames": 10, "n_filter_banks": 16, "window_size": 31},
           weights={"magnitudes": rng.normal(size=(10, 16)).astype(np.float32)})
    mags = rng.normal(size=(2, 40, 65)).astype(np.float32)
    r.case("fir_filter", "effects.FIRFilter", [audio, mags], init={})
    r.case("fir_filter_65", "effects.FIRFilter", [audio, mags], init={"window_size": 65, "scale_fn": None})
    r.case("mod_delay", "effects.ModDelay",
           [audio, rng.normal(size=(2, 2000, 1)).astype(np.float32), smooth(rng, (2, 2000, 1), -4, 4)], init={})
    r.case("mod_delay_wet", "effects.ModDelay",
           [audio, rng.uniform(0, 1, (2, 2000, 1)).astype(np.float32), smooth(rng, (2, 2000, 1), 0, 1)],
           init={"center_ms": 5.0, "depth_ms": 3.0, "gain_scale_fn": None, "phase_scale_fn": None,
                 "add_dry": False})


def record_processors(r: Recorder):
    rng = r.rng
    one = r.keep("processors", "one_2x2000", test_audio(rng, 2, 2000))
    two = r.keep("processors", "two_2x2000", test_audio(rng, 2, 2000))
    r.case("add", "processors.Add", [one, two], init={})
    # The original's Mix multiplies by a [batch, n_samples, 1] level: signals carry a channel axis.
    r.case("mix", "processors.Mix", [test_audio(rng, 2, 2000)[..., None], test_audio(rng, 2, 2000)[..., None],
                                     rng.normal(0, 3, (2, 50, 1)).astype(np.float32)], init={})
    longer = r.keep("processors", "audio_2x1256", test_audio(rng, 2, 1256))
    for location in ("front", "center", "back"):
        r.case(f"crop_{location}", "processors.Crop", [longer], init={"frame_size": 256, "crop_location": location})
    inputs = {"amps": rng.normal(size=(2, 50, 1)).astype(np.float32),
              "hd": rng.normal(size=(2, 50, 20)).astype(np.float32),
              "f0_hz": smooth(rng, (2, 50, 1), 100, 1000),
              "noise_magnitudes": rng.normal(size=(2, 50, 33)).astype(np.float32)}
    nodes = [("synths.Harmonic", {"n_samples": 2000}, ["amps", "hd", "f0_hz"]),
             ("synths.FilteredNoise", {"n_samples": 2000, "window_size": 33}, ["noise_magnitudes"]),
             ("processors.Add", {}, ["filtered_noise/signal", "harmonic/signal"]),
             ("effects.Reverb", {"trainable": True, "reverb_length": 500}, ["add/signal"])]
    weights = {"ir": rng.normal(0, 0.05, 500).astype(np.float32)}
    r.group_case("processor_group", "processors", "processors.ProcessorGroup", nodes, inputs, weights=weights)
    nodes_inputs = [(t, i, [f"inputs/{k}" if k in inputs else k for k in keys]) for t, i, keys in nodes]
    r.group_case("processor_group_outputs", "processors", "processors.ProcessorGroup", nodes_inputs, inputs,
                 weights=weights, return_outputs_dict=True)
    r.group_case("dag_layer", "dags", "dags.DAGLayer",
                 [("processors.Add", {"name": "add_one"}, ["inputs/a", "b"]),
                  ("processors.Add", {"name": "add_two"}, ["add_one/signal", "inputs/b"])],
                 {"a": test_audio(rng, 2, 1000), "b": test_audio(rng, 2, 1000)})


def record_losses(r: Recorder):
    rng = r.rng
    target = r.keep("losses", "target_2x10x8", rng.normal(size=(2, 10, 8)))
    value = r.keep("losses", "value_2x10x8", rng.normal(size=(2, 10, 8)))
    # 'COSINE' is not recorded: the original calls tf.losses.cosine_distance, which TF 2 no longer
    # has (AttributeError), so it has no behaviour to match.
    for loss_type in ("L1", "L2"):
        r.case(f"mean_difference_{loss_type}", "losses.mean_difference", [target, value, loss_type])
        r.case(f"mean_difference_{loss_type}_weights", "losses.mean_difference", [target, value, loss_type],
               {"weights": rng.uniform(0, 1, (2, 10, 8)).astype(np.float32)})
    r.case("mean_difference_trailing_weights", "losses.mean_difference", [target, value],
           {"weights": rng.uniform(0, 1, (8,)).astype(np.float32)})
    audio = r.keep("losses", "audio_2x2000", test_audio(rng, 2, 2000))
    synth = r.keep("losses", "synth_2x2000", test_audio(rng, 2, 2000, silent_tail=True))
    r.case("spectral_loss", "losses.SpectralLoss", [audio, synth], init={})
    r.case("spectral_loss_all_terms", "losses.SpectralLoss", [audio, synth],
           init={"fft_sizes": [1024, 256, 64], "mag_weight": 1.0, "delta_time_weight": 0.5, "delta_freq_weight": 0.3,
                 "cumsum_freq_weight": 0.1, "logmag_weight": 1.0, "loudness_weight": 0.2})
    r.case("spectral_loss_l2_loudness", "losses.SpectralLoss", [audio, synth],
           init={"fft_sizes": [512], "loss_type": "L2", "mag_weight": 0.0, "loudness_weight": 1.0})
    r.case("spectral_loss_dict", "losses.SpectralLoss", [audio, synth],
           init={"fft_sizes": [256, 128], "logmag_weight": 1.0, "name": "my_loss"}, method="get_losses_dict")
    r.case("param_loss", "losses.ParamLoss", [target, value], init={"weight": 2.0, "loss_type": "L2"})
    r.case("param_loss_weights", "losses.ParamLoss", [target, value, rng.uniform(0, 1, (2, 10, 8)).astype(np.float32)],
           init={})
    amp_a = rng.uniform(0, 1, (2, 10, 5)).astype(np.float32)
    amp_b = rng.uniform(0, 1, (2, 10, 5)).astype(np.float32)
    r.case("amp_loss", "losses.amp_loss", [amp_a, amp_b])
    r.case("amp_loss_log", "losses.amp_loss", [amp_a, amp_b], {"log": True, "loss_type": "L2"})
    r.case("freq_loss", "losses.freq_loss", [amp_a * 1000 + 50, amp_b * 1000 + 50])
    # The experimental losses (the original builds them on tensorflow_probability).
    mags = rng.uniform(0, 1, (2, 10, 16)).astype(np.float32)
    r.case("filtered_noise_consistency", "losses.FilteredNoiseConsistencyLoss",
           [mags, rng.uniform(0, 1, (2, 10, 16)).astype(np.float32)], init={"weight": 2.0})
    harm_amp_target = rng.uniform(0, 1, (2, 10, 1)).astype(np.float32)
    harm_amp_target[:, :3] = 1e-5  # below amp_threshold
    r.case("harmonic_consistency", "losses.HarmonicConsistencyLoss",
           [rng.uniform(0, 1, (2, 10, 1)).astype(np.float32), harm_amp_target,
            rng.uniform(0, 1, (2, 10, 8)).astype(np.float32), rng.uniform(0, 1, (2, 10, 8)).astype(np.float32),
            smooth(rng, (2, 10, 1), 100, 500), smooth(rng, (2, 10, 1), 100, 500)],
           init={"amp_weight": 1.5, "dist_weight": 0.5, "f0_weight": 2.0})
    sin_freqs_a = r.keep("losses", "sin_freqs_a", smooth(rng, (2, 5, 8), 100, 4000))
    sin_freqs_b = r.keep("losses", "sin_freqs_b", smooth(rng, (2, 5, 8), 100, 4000))
    sin_amps_a = rng.uniform(0, 1, (2, 5, 8))
    sin_amps_a[0, 0, :3] = 0.0
    sin_amps_a = r.keep("losses", "sin_amps_a", sin_amps_a)
    sin_amps_b = r.keep("losses", "sin_amps_b", rng.uniform(0, 1, (2, 5, 8)))
    r.case("wasserstein_distance", "losses.wasserstein_distance", [sin_freqs_a, sin_freqs_b, sin_amps_a, sin_amps_b])
    # (Without weights the original divides int32 indices by a float: TypeError, nothing to record.)
    r.case("wasserstein_distance_p2", "losses.wasserstein_distance",
           [sin_freqs_a, sin_freqs_b, sin_amps_a, sin_amps_b], {"p": 2.0})
    r.case("wasserstein_consistency", "losses.WassersteinConsistencyLoss",
           [sin_amps_a, sin_freqs_a, sin_amps_b, sin_freqs_b], init={"weight": 1.5})
    r.case("kde_consistency", "losses.KDEConsistencyLoss", [sin_amps_a, sin_freqs_a, sin_amps_b, sin_freqs_b],
           init={})
    r.case("kde_consistency_args", "losses.KDEConsistencyLoss", [sin_amps_a, sin_freqs_a, sin_amps_b, sin_freqs_b],
           init={"weight_a": 0.5, "weight_b": 2.0, "weight_mean_amp": 0.3, "scale_a": 0.5, "scale_b": 1.0})
    candidates = r.keep("losses", "f0_candidates", smooth(rng, (2, 5, 4), 80, 1000))
    r.case("twm_loss", "losses.TWMLoss", [candidates, sin_freqs_a, sin_amps_b], init={})
    r.case("twm_loss_tensors", "losses.TWMLoss", [candidates, sin_freqs_a, sin_amps_b],
           init={"sinusoids_scale": 0.3, "n_harmonic_points": 6, "softmin_temperature": 0.5},
           method="get_loss_tensors")
    r.case("twm_predict_f0", "losses.TWMLoss", [candidates, sin_freqs_a, sin_amps_b], init={},
           method="predict_f0")
    pitch = np.round(smooth(rng, (2, 50, 1), 40, 80, n_knots=4)) + rng.normal(0, 0.2, (2, 50, 1))
    hmm_amps = rng.uniform(0.8, 2.0, (2, 50, 1))
    hmm_amps[:, 20:25] = 0.01  # a silence
    pitch, hmm_amps = r.keep("losses", "hmm_pitch", pitch), r.keep("losses", "hmm_amps", hmm_amps)
    hmm_init = {"n_timesteps": 50, "avg_length": 20, "weight": 0.5}
    r.case("hmm_nll", "losses.HmmTranscriber", [pitch, hmm_amps], init=hmm_init)
    r.case("hmm_nll_per_example", "losses.HmmTranscriber", [pitch, hmm_amps], {"per_example_loss": True},
           init=hmm_init, method="nll")
    r.case("hmm_predict_midi", "losses.HmmTranscriber", [pitch, hmm_amps], init=hmm_init, method="predict_midi")
    r.group_case("loss_group", "losses", "losses.LossGroup",
                 [("losses.SpectralLoss", {"fft_sizes": [256, 64]}, ["audio", "audio_synth"]),
                  ("losses.ParamLoss", {"name": "f0_loss"}, ["f0_a", "f0_b"])],
                 {"audio": audio, "audio_synth": synth, "f0_a": amp_a, "f0_b": amp_b})


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "golden")
    tf.config.set_visible_devices([], "GPU")
    recorder = Recorder()
    for record in (record_core, record_spectral_ops, record_synths, record_effects, record_processors,
                   record_losses):
        record(recorder)
    recorder.save(out_dir)
    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    print(f"{len(recorder.manifest)} cases, {total / 1e6:.2f} MB in {os.path.abspath(out_dir)}")


if __name__ == "__main__":
    main()
