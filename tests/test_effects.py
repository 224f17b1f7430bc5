"""Specification of the effects: reverbs (given and learned IRs), FIR filter, modulated delay."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from ddsp_models import core, effects

RNG = np.random.default_rng(2)
AUDIO = RNG.normal(size=[2, 800]).astype(np.float32)


def unit_impulse(size, at, batch=2):
    ir = np.zeros([batch, size], np.float32)
    ir[:, at] = 1.0
    return ir


# ----------------------------------------------------------------------------------- Reverb
def test_reverb_with_a_delayed_unit_impulse_delays_the_wet_signal_exactly():
    reverb = effects.Reverb(add_dry=False)
    wet = reverb(AUDIO, unit_impulse(100, at=37)).numpy()
    np.testing.assert_allclose(wet[:, 37:], AUDIO[:, :-37], atol=1e-5)
    np.testing.assert_allclose(wet[:, :37], 0.0, atol=1e-5)
    # With the dry path: input plus the delayed copy.
    both = effects.Reverb()(AUDIO, unit_impulse(100, at=37)).numpy()
    np.testing.assert_allclose(both[:, 37:], AUDIO[:, 37:] + AUDIO[:, :-37], atol=1e-5)


def test_reverb_zeroes_the_first_ir_sample_so_dry_and_wet_stay_separate():
    # A zero wet IR (only a direct-sound sample, which is masked) returns the dry input...
    direct_only = unit_impulse(50, at=0)
    np.testing.assert_allclose(effects.Reverb()(AUDIO, direct_only).numpy(), AUDIO, atol=1e-6)
    np.testing.assert_allclose(effects.Reverb()(AUDIO, np.zeros([2, 50], np.float32)).numpy(), AUDIO, atol=1e-6)
    # ... and nothing when the dry path is off.
    np.testing.assert_allclose(effects.Reverb(add_dry=False)(AUDIO, direct_only).numpy(), 0.0, atol=1e-6)


def test_reverb_is_causal_convolution_with_the_masked_ir():
    ir = RNG.normal(size=[2, 120]).astype(np.float32)
    masked = ir.copy()
    masked[:, 0] = 0.0
    expected = np.stack([np.convolve(a, h)[:800] for a, h in zip(AUDIO, masked)]) + AUDIO
    reverb = effects.Reverb()
    np.testing.assert_allclose(reverb(AUDIO, ir).numpy(), expected, atol=1e-4)
    graph = tf.function(lambda a, h: reverb(a, h))
    np.testing.assert_allclose(graph(AUDIO, ir).numpy(), expected, atol=1e-4)


def test_reverb_errors_name_the_problem():
    with pytest.raises(ValueError, match="ir"):
        effects.Reverb()(AUDIO)
    with pytest.raises(TypeError, match="ir"):
        effects.Reverb()(AUDIO, np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="batch"):
        effects.Reverb()(AUDIO, np.zeros([3, 10], np.float32))
    with pytest.raises(TypeError, match="audio"):
        effects.Reverb()(tf.constant([["a"]]), np.zeros([1, 10], np.float32))


def test_trainable_reverb_learns_its_ir_and_restores_from_a_checkpoint(tmp_path):
    reverb = effects.Reverb(trainable=True, reverb_length=64)
    audio = RNG.normal(size=[2, 256]).astype(np.float32)
    target = effects.Reverb()(audio, unit_impulse(64, at=10)).numpy()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((reverb(audio) - target) ** 2)
    assert [v.path for v in reverb.trainable_variables] == ["reverb/ir"]
    (grad,) = tape.gradient(loss, reverb.trainable_variables)
    assert np.all(np.isfinite(grad.numpy())) and abs(grad.numpy()[10]) > 0
    assert grad.numpy()[0] == 0.0  # the masked direct-sound sample gets no gradient
    optimizer = tf.keras.optimizers.SGD(learning_rate=0.2)
    for _ in range(30):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((reverb(audio) - target) ** 2)
        optimizer.apply_gradients(zip(tape.gradient(loss, reverb.trainable_variables), reverb.trainable_variables))
    assert reverb.ir.numpy()[10] > 0.5 and np.abs(np.delete(reverb.ir.numpy(), [0, 10])).max() < 0.1

    path = tf.train.Checkpoint(reverb=reverb).write(str(tmp_path / "reverb"))
    restored = effects.Reverb(trainable=True, reverb_length=64)
    restored(audio)  # build
    assert not np.allclose(restored.ir.numpy(), reverb.ir.numpy())
    tf.train.Checkpoint(reverb=restored).read(path).assert_consumed()
    np.testing.assert_array_equal(restored.ir.numpy(), reverb.ir.numpy())
    np.testing.assert_allclose(restored(audio).numpy(), reverb(audio).numpy(), atol=1e-6)


# ------------------------------------------------------------------ parametric reverbs
def test_exp_decay_reverb_ir_decays_at_the_requested_rate():
    reverb = effects.ExpDecayReverb(reverb_length=16000, scale_fn=None)
    gain, decay = np.array([[0.5]], np.float32), np.array([[np.log(4.0)]], np.float32)  # rate 2 + 4
    ir = reverb(AUDIO[:1], gain, decay, return_outputs_dict=True)["controls"]["ir"].numpy()[0]
    quarters = (ir.reshape(4, 4000) ** 2).mean(axis=1)
    # Envelope 0.5 * exp(-6 t): energy falls by exp(-2 * 6 * 0.25) per quarter of the IR.
    np.testing.assert_allclose(quarters[1:] / quarters[:-1], np.exp(-3.0), rtol=0.15)
    assert quarters[0] == pytest.approx(0.25 / 3.0 * np.mean(np.exp(-12.0 * np.linspace(0, 0.25, 4000))), rel=0.1)
    with pytest.raises(ValueError, match="gain"):
        reverb(AUDIO)


def test_trainable_parametric_reverbs_build_restorable_variables(tmp_path):
    exp_reverb = effects.ExpDecayReverb(trainable=True, reverb_length=400)
    noise_reverb = effects.FilteredNoiseReverb(trainable=True, reverb_length=400, n_frames=10, n_filter_banks=8)
    for reverb in (exp_reverb, noise_reverb):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(reverb(AUDIO) ** 2)
        grads = tape.gradient(loss, reverb.trainable_variables)
        assert grads and all(np.all(np.isfinite(g.numpy())) and np.abs(g.numpy()).max() > 0 for g in grads)
    assert [v.path for v in exp_reverb.trainable_variables] == ["exp_decay_reverb/gain", "exp_decay_reverb/decay"]
    np.testing.assert_allclose([exp_reverb.gain.numpy()[0], exp_reverb.decay.numpy()[0]], [2.0, 4.0])
    assert noise_reverb.magnitudes.shape == (10, 8)
    path = tf.train.Checkpoint(reverb=noise_reverb).write(str(tmp_path / "noise_reverb"))
    restored = effects.FilteredNoiseReverb(trainable=True, reverb_length=400, n_frames=10, n_filter_banks=8)
    restored(AUDIO)
    tf.train.Checkpoint(reverb=restored).read(path).assert_consumed()
    np.testing.assert_array_equal(restored.magnitudes.numpy(), noise_reverb.magnitudes.numpy())


def test_filtered_noise_reverb_shapes_its_ir_spectrum():
    reverb = effects.FilteredNoiseReverb(reverb_length=8000, n_frames=10, n_filter_banks=17, scale_fn=None)
    magnitudes = np.tile((np.arange(17) < 4).astype(np.float32), [1, 10, 1])  # low-pass at 2 kHz
    ir = reverb(AUDIO[:1], magnitudes, return_outputs_dict=True)["controls"]["ir"].numpy()[0]
    power = np.abs(np.fft.rfft(ir)) ** 2
    cutoff_bin = len(power) * 2000 // 8000
    assert power[:cutoff_bin].sum() > 0.9 * power.sum()


# ---------------------------------------------------------------------------- FIRFilter
def test_fir_filter_passes_low_and_blocks_high_frequencies():
    t = np.arange(3200) / 16000.0
    audio = np.stack([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 5000 * t)]).astype(np.float32)
    magnitudes = np.tile((np.arange(65) < 16).astype(np.float32), [2, 20, 1])  # low-pass 2 kHz
    fir = effects.FIRFilter(scale_fn=None)
    filtered = fir(audio, magnitudes).numpy()[:, 300:-300]
    assert np.sqrt(np.mean(filtered[0] ** 2)) == pytest.approx(np.sqrt(0.5), rel=0.02)
    assert np.sqrt(np.mean(filtered[1] ** 2)) < 1e-3
    graph = tf.function(lambda a, m: fir(a, m))(audio, magnitudes).numpy()[:, 300:-300]
    np.testing.assert_allclose(graph, filtered, atol=1e-5)
    with pytest.raises(ValueError, match="magnitudes"):
        fir(audio, np.zeros([2, 65], np.float32))


# ------------------------------------------------------------------------------ ModDelay
def test_mod_delay_delays_by_center_plus_depth_times_phase():
    """The original's mapping: delay = center_ms + depth_ms * phase."""
    mod_delay = effects.ModDelay(center_ms=2.0, depth_ms=1.0, gain_scale_fn=None, phase_scale_fn=None,
                                 add_dry=False)
    gain = np.ones([2, 10, 1], np.float32)
    for phase, delay_samples in [(0.5, 40), (0.75, 44), (0.0, 32)]:  # 2.5, 2.75, 2 ms at 16 kHz
        out = mod_delay(AUDIO, gain, np.full([2, 10, 1], phase, np.float32)).numpy()
        np.testing.assert_allclose(out[:, delay_samples:], AUDIO[:, :-delay_samples], atol=1e-5)
    # The longest delay wraps to no delay (core.variable_length_delay reads its table cyclically).
    np.testing.assert_allclose(mod_delay(AUDIO, gain, np.full([2, 10, 1], 1.0, np.float32)).numpy(), AUDIO,
                               atol=1e-5)
    with_dry = effects.ModDelay(center_ms=2.0, depth_ms=1.0, gain_scale_fn=None, phase_scale_fn=None)
    out = with_dry(AUDIO, 0.5 * gain, np.full([2, 10, 1], 0.5, np.float32)).numpy()
    np.testing.assert_allclose(out[:, 40:], AUDIO[:, 40:] + 0.5 * AUDIO[:, :-40], atol=1e-5)


def test_mod_delay_graph_mode_gradients_and_errors():
    mod_delay = effects.ModDelay()
    gain = tf.Variable(RNG.normal(size=[2, 10, 1]).astype(np.float32))
    phase = tf.Variable(RNG.normal(size=[2, 10, 1]).astype(np.float32))
    with tf.GradientTape() as tape:
        out = mod_delay(AUDIO, gain, phase)
        loss = tf.reduce_sum(out ** 2)
    for grad in tape.gradient(loss, [gain, phase]):
        assert np.all(np.isfinite(grad.numpy())) and np.abs(grad.numpy()).max() > 0
    graph = tf.function(lambda a, g, p: mod_delay(a, g, p))(AUDIO, gain, phase)
    # Read positions n - delay are float32 (ulp 6e-5 at n = 800), so graph rewrites of the
    # arithmetic can move the interpolation fraction by an ulp.
    np.testing.assert_allclose(graph.numpy(), out.numpy(), atol=5e-4)
    with pytest.raises(ValueError, match="gain"):
        mod_delay(AUDIO, np.zeros([2, 10, 2], np.float32), phase)
    with pytest.raises(ValueError, match="depth_ms"):
        effects.ModDelay(center_ms=5.0, depth_ms=-1.0)


def test_reverb_output_is_differentiable_with_respect_to_the_given_ir():
    ir = tf.Variable(RNG.normal(size=[2, 30]).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(effects.Reverb()(AUDIO, ir) ** 2)
    grad = tape.gradient(loss, ir).numpy()
    assert np.all(np.isfinite(grad)) and np.all(grad[:, 0] == 0.0) and np.abs(grad[:, 1:]).min() > 0
    assert core.fft_convolve(AUDIO, ir.numpy()).shape == AUDIO.shape
