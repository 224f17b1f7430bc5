"""Losses of inverse synthesis (DDSP-inv): consistency between representations, TWM, priors.

Representations (frame rate, float32, `[batch, n_frames, ...]`):
  sinusoids: amplitudes and frequencies (Hz), `[batch, n_frames, n_sinusoids]`;
  harmonic: overall amplitude `[batch, n_frames, 1]`, distribution `[batch, n_frames,
    n_harmonics]` (sums to 1), f0 in Hz `[batch, n_frames, 1]`;
  filtered noise: linear band gains `[batch, n_frames, n_bands]`.

Losses:
  InverseKDEConsistencyLoss: how well one set of weighted frequencies explains another, as the
    amplitude-weighted negative log-likelihood under a Gaussian kernel density in MIDI
    (log-frequency), each direction optionally relative to the set's own likelihood.
  InverseHarmonicConsistencyLoss / InverseFilteredNoiseConsistencyLoss: direct parameter agreement.
  InverseTWMLoss: Maher & Beauchamp two-way mismatch between f0 candidates and sinusoids.
  HarmonicDistributionPrior: penalises energy in upper harmonics.

These are this project's versions (gin names `inverse_losses.Inverse*`, named apart so that an
original config's bare `KDEConsistencyLoss.weight_a = ...` binds the original DDSP's classes,
`ddsp_models.losses.*` from `consistency_losses`, without ambiguity).
"""
import math

import tensorflow as tf

from ddsp_models import core
from ddsp_models.checks import non_negative_float, positive_float, positive_int
from ddsp_models.gin_utils import register
from ddsp_models.losses import Loss, ParamLoss, check_loss_type, check_same_shape, mean_difference

KDE_FLOOR = 1e-5  # density floor inside the log: caps one component's NLL at -log(1e-5) ~ 11.5.
# Kernel widths from a component at which the floored density stops changing: exp(-z^2/2) =
# KDE_FLOOR at z = sqrt(2 ln(1 / KDE_FLOOR)) ~ 4.8 (2.4 semitones for a 0.5-semitone kernel).
KDE_FLOOR_DISTANCE = (2.0 * math.log(1.0 / KDE_FLOOR)) ** 0.5
# Default NLL added per kernel width beyond KDE_FLOOR_DISTANCE to the nearest component.
KDE_FAR_SLOPE = 0.25


def _floored_log(x) -> tf.Tensor:
    """Natural log with inputs floored at 1e-5 (bounded values and gradients)."""
    return tf.math.log(tf.maximum(core.tf_float32(x, "x"), 1e-5))


def _frames(x, name: str, channels: int | None = None) -> tf.Tensor:
    """Float32 `[batch, n_frames, channels]` from rank 2 (one channel) or rank 3 input."""
    x = core.tf_float32(x, name)
    core.ensure_rank(x, (2, 3), name)
    if x.shape.rank == 2:
        x = x[..., tf.newaxis]
    if channels is not None and x.shape[-1] is not None and x.shape[-1] != channels:
        raise ValueError(f"`{name}` must have shape [batch, n_frames, {channels}], got {x.shape.as_list()}.")
    return x


def _normalized_weights(amplitudes: tf.Tensor) -> tf.Tensor:
    """Non-negative amplitudes -> weights summing to 1 over the last axis (0 for silent frames)."""
    amplitudes = tf.maximum(amplitudes, 0.0)
    return core.safe_divide(amplitudes, tf.reduce_sum(amplitudes, axis=-1, keepdims=True))


def kde_negative_log_likelihood(amps_x, freqs_x, amps_y, freqs_y, kernel_width_midi: float = 0.5,
                                far_slope: float = KDE_FAR_SLOPE) -> tf.Tensor:
    """Amplitude-weighted NLL of frequencies x under a kernel density of frequencies y.

    density_y(m) = sum_j w_j exp(-(m - m_j)^2 / (2 s^2)), with m = MIDI(frequency), w_j the
    amplitudes of y normalised to sum to 1 and s = kernel_width_midi (semitones); the kernel
    peaks at 1, so a component exactly on a lone y component of weight w scores -log(w).
    A component i scores -log(density_y(m_i) + 1e-5) + far_slope * max(z_i - z_floor, 0),
    z_i = min_j |m_i - m_j| / s over the y components with w_j > 0 and z_floor =
    KDE_FLOOR_DISTANCE (~4.8, where the Gaussian falls to the 1e-5 floor). The floor keeps the
    NLL bounded; without the linear far term its gradient vanishes for components more than
    ~4.8 kernel widths (2.4 semitones at s = 0.5) from every y component, so predictions that
    start far from their targets (an octave off, or a sinusoid encoder's initial guesses)
    would never be pulled in. The result is sum_i v_i * score_i, v the normalised amplitudes
    of x.

    Args:
      amps_x, freqs_x: `[batch, n_frames, n_x]` (Hz).
      amps_y, freqs_y: `[batch, n_frames, n_y]` (Hz).
      kernel_width_midi: s, semitones.
      far_slope: nats per kernel width beyond z_floor (>= 0; 0: the floored NLL alone).

    Returns:
      `[batch, n_frames]` nats.
    """
    midi_x = core.hz_to_midi(freqs_x)[..., :, tf.newaxis]  # [b, t, n_x, 1]
    midi_y = core.hz_to_midi(freqs_y)[..., tf.newaxis, :]  # [b, t, 1, n_y]
    z = tf.abs(midi_x - midi_y) / kernel_width_midi
    weights_y = _normalized_weights(amps_y)[..., tf.newaxis, :]
    density = tf.reduce_sum(tf.exp(-0.5 * tf.square(z)) * weights_y, axis=-1)
    nll = -tf.math.log(density + KDE_FLOOR)
    if far_slope > 0.0:
        nearest = tf.reduce_min(tf.where(weights_y > 0.0, z, 1e9), axis=-1)  # [b, t, n_x]
        far = tf.where(nearest < 1e8, tf.maximum(nearest - KDE_FLOOR_DISTANCE, 0.0), 0.0)
        nll += far_slope * far
    return tf.reduce_sum(_normalized_weights(amps_x) * nll, axis=-1)


@register("inverse_losses")
class InverseKDEConsistencyLoss(Loss):
    """Agreement of two weighted frequency sets (e.g. harmonics and sinusoids) by kernel densities.

    Direction a->b scores the components of a under the kernel density of b (see
    kde_negative_log_likelihood, MIDI domain); b->a the reverse. With `relative=True` each
    direction subtracts the set's likelihood under its own density, a plug-in estimate of the
    KL divergence between the two amplitude-weighted spectra: 0 for identical sets, growing as
    components are detuned, dropped or reweighted. With `relative=False` it is the plain NLL.

    Args:
      weight_a_b, weight_b_a: weights of the two directions (>= 0).
      kernel_width_midi: Gaussian kernel standard deviation, semitones.
      relative: subtract the self-likelihood (see above).
      weight_a, weight_b, scale_a, scale_b: the original DDSP's names (they win when given):
        weight_a = weight_a_b, weight_b = weight_b_a; scale_a / scale_b are the kernel widths
        (semitones) of the densities of a / b (a -> b uses b's width).
      weight_mean_amp: weight of mean |mean_k amps_a - mean_k amps_b| (the original's term
        matching the overall level); None: 1.0 when any of the original's names is given (its
        default), else 0.
      far_slope: nats per kernel width added beyond ~4.8 widths from the nearest component
        (kde_negative_log_likelihood): the pull on far-off components (0: none).
      weight_log_amp: weight of mean |log(sum_k amps_a + 1e-5) - log(sum_k amps_b + 1e-5)|,
        the frames' total amplitudes compared in nats. The KDE terms see only normalised
        amplitudes, and weight_mean_amp's linear difference of ~1e-2 amplitudes is too small
        to train quiet sinusoids: this sets their level against true controls.

    Call: `loss(amps_a, freqs_a, amps_b, freqs_b)`, each `[batch, n_frames, n_components]`
    (frequencies in Hz; the two sets may have different numbers of components). Returns the
    weighted sum of the directions' means over batch and frames.
    """

    def __init__(self, weight_a_b: float = 1.0, weight_b_a: float = 1.0, kernel_width_midi: float = 0.5,
                 relative: bool = True, weight_a: float | None = None, weight_b: float | None = None,
                 scale_a: float | None = None, scale_b: float | None = None, weight_mean_amp: float | None = None,
                 far_slope: float = KDE_FAR_SLOPE, weight_log_amp: float = 0.0, name: str = "kde_consistency_loss",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        original = any(v is not None for v in (weight_a, weight_b, scale_a, scale_b))
        self.weight_a_b = non_negative_float("`weight_a_b`", weight_a_b if weight_a is None else weight_a)
        self.weight_b_a = non_negative_float("`weight_b_a`", weight_b_a if weight_b is None else weight_b)
        self.kernel_width_midi = positive_float("`kernel_width_midi`", kernel_width_midi)
        self.width_a = positive_float("`scale_a`", kernel_width_midi if scale_a is None else scale_a)
        self.width_b = positive_float("`scale_b`", kernel_width_midi if scale_b is None else scale_b)
        if weight_mean_amp is None:
            weight_mean_amp = 1.0 if original else 0.0
        self.weight_mean_amp = non_negative_float("`weight_mean_amp`", weight_mean_amp)
        self.relative = bool(relative)
        self.far_slope = non_negative_float("`far_slope`", far_slope)
        self.weight_log_amp = non_negative_float("`weight_log_amp`", weight_log_amp)

    def get_config(self):
        config = super().get_config()
        config.update(weight_a_b=self.weight_a_b, weight_b_a=self.weight_b_a,
                      kernel_width_midi=self.kernel_width_midi, relative=self.relative, scale_a=self.width_a,
                      scale_b=self.width_b, weight_mean_amp=self.weight_mean_amp, far_slope=self.far_slope,
                      weight_log_amp=self.weight_log_amp)
        return config

    def _direction(self, amps_x, freqs_x, amps_y, freqs_y, width_x, width_y) -> tf.Tensor:
        nll = kde_negative_log_likelihood(amps_x, freqs_x, amps_y, freqs_y, width_y, self.far_slope)
        if self.relative:
            nll -= kde_negative_log_likelihood(amps_x, freqs_x, amps_x, freqs_x, width_x)
        return tf.reduce_mean(nll)

    def call(self, amps_a, freqs_a, amps_b, freqs_b):
        amps_a, freqs_a = _frames(amps_a, "amps_a"), _frames(freqs_a, "freqs_a")
        amps_b, freqs_b = _frames(amps_b, "amps_b"), _frames(freqs_b, "freqs_b")
        check_same_shape(amps_a, freqs_a, "amps_a", "freqs_a")
        check_same_shape(amps_b, freqs_b, "amps_b", "freqs_b")
        loss = tf.constant(0.0)
        if self.weight_a_b > 0.0:
            loss += self.weight_a_b * self._direction(amps_a, freqs_a, amps_b, freqs_b, self.width_a, self.width_b)
        if self.weight_b_a > 0.0:
            loss += self.weight_b_a * self._direction(amps_b, freqs_b, amps_a, freqs_a, self.width_b, self.width_a)
        if self.weight_mean_amp > 0.0:
            level = tf.abs(tf.reduce_mean(amps_a, axis=-1) - tf.reduce_mean(amps_b, axis=-1))
            loss += self.weight_mean_amp * tf.reduce_mean(level)
        if self.weight_log_amp > 0.0:
            log_a = tf.math.log(tf.reduce_sum(tf.maximum(amps_a, 0.0), axis=-1) + 1e-5)
            log_b = tf.math.log(tf.reduce_sum(tf.maximum(amps_b, 0.0), axis=-1) + 1e-5)
            loss += self.weight_log_amp * tf.reduce_mean(tf.abs(log_a - log_b))
        return loss


@register("inverse_losses")
class InverseHarmonicConsistencyLoss(Loss):
    """Agreement of two harmonic-synth parameter sets (e.g. predicted vs. from sinusoids).

    Terms: amplitudes compared as natural logs (floored at 1e-5), distributions linearly,
    f0 in MIDI (semitones); each under `loss_type`, weighted and summed.

    Call: `loss(harm_amp, harm_amp_target, harm_dist, harm_dist_target, f0_hz, f0_hz_target)`
    with amplitudes and f0 `[batch, n_frames, 1]` (or `[batch, n_frames]`), distributions
    `[batch, n_frames, n_harmonics]`.
    """

    def __init__(self, amp_weight: float = 1.0, dist_weight: float = 1.0, f0_weight: float = 1.0,
                 loss_type: str = "L1", name: str = "harmonic_consistency_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.amp_weight = non_negative_float("`amp_weight`", amp_weight)
        self.dist_weight = non_negative_float("`dist_weight`", dist_weight)
        self.f0_weight = non_negative_float("`f0_weight`", f0_weight)
        self.loss_type = check_loss_type(loss_type)

    def get_config(self):
        config = super().get_config()
        config.update(amp_weight=self.amp_weight, dist_weight=self.dist_weight, f0_weight=self.f0_weight,
                      loss_type=self.loss_type)
        return config

    def call(self, harm_amp, harm_amp_target, harm_dist, harm_dist_target, f0_hz, f0_hz_target):
        terms = (
            ("harm_amp", harm_amp, harm_amp_target, 1, _floored_log, self.amp_weight),
            ("harm_dist", harm_dist, harm_dist_target, None, tf.identity, self.dist_weight),
            ("f0_hz", f0_hz, f0_hz_target, 1, core.hz_to_midi, self.f0_weight),
        )
        loss = tf.constant(0.0)
        for name, value, target, channels, transform, weight in terms:
            value = _frames(value, name, channels)
            target = _frames(target, f"{name}_target", channels)
            check_same_shape(target, value, f"{name}_target", name)
            if weight > 0.0:
                loss += weight * mean_difference(transform(target), transform(value), self.loss_type)
        return loss


@register("inverse_losses")
class InverseFilteredNoiseConsistencyLoss(ParamLoss):
    """Agreement of two filtered-noise band-gain sets, compared as natural logs (floored 1e-5).

    Call: `loss(noise_magnitudes, noise_magnitudes_target)`, both `[batch, n_frames, n_bands]`
    linear gains. Returns weight * mean difference under `loss_type` (a `ParamLoss` on logs).
    """

    def __init__(self, weight: float = 1.0, loss_type: str = "L1", name: str = "filtered_noise_consistency_loss",
                 **kwargs):
        super().__init__(weight=weight, loss_type=loss_type, name=name, **kwargs)

    def call(self, noise_magnitudes, noise_magnitudes_target):
        value = _frames(noise_magnitudes, "noise_magnitudes")
        target = _frames(noise_magnitudes_target, "noise_magnitudes_target")
        check_same_shape(target, value, "noise_magnitudes_target", "noise_magnitudes")
        return super().call(_floored_log(target), _floored_log(value))


def twm_errors(f0_candidates, sin_freqs, sin_amps, n_harmonics: int = 20, p: float = 0.5, q: float = 1.4,
               r: float = 0.5, rho: float = 0.33, min_relative_amplitude: float = 1e-3) -> tf.Tensor:
    """Two-way mismatch error (Maher & Beauchamp 1994) of each f0 candidate; lower is better.

    Measured peaks are the sinusoids whose amplitude is at least `min_relative_amplitude` times
    the frame's largest (A_max); the others are ignored. For a candidate f0 the predicted
    partials are n * f0, n = 1..n_harmonics, up to the highest measured peak frequency.
      predicted->measured: for each partial f_n, df = |f_n - nearest peak|, a = that peak's
        amplitude: E_pm = mean_n [df f_n^-p + (a / A_max)(q df f_n^-p - r)];
      measured->predicted: for each peak f_k (amplitude a_k), df = |f_k - nearest partial|:
        E_mp = mean_k [df f_k^-p + (a_k / A_max)(q df f_k^-p - r)];
      error = E_pm + rho * E_mp.
    Matched partials contribute -r a / A_max, so missing or unexplained partials (sub- and
    super-octave candidates) raise the error.

    Args:
      f0_candidates: Hz, `[batch, n_frames, n_candidates]` (or `[batch, n_frames]`).
      sin_freqs: Hz, `[batch, n_frames, n_sinusoids]`.
      sin_amps: non-negative, `[batch, n_frames, n_sinusoids]`.

    Returns:
      Errors `[batch, n_frames, n_candidates]` (0 for frames without peaks).
    """
    f0 = tf.maximum(_frames(f0_candidates, "f0_candidates"), 1e-3)
    freqs = tf.maximum(_frames(sin_freqs, "sin_freqs"), 1e-3)
    amps = tf.maximum(_frames(sin_amps, "sin_amps"), 0.0)
    check_same_shape(amps, freqs, "sin_amps", "sin_freqs")
    big = 1e9
    rel_amps = core.safe_divide(amps, tf.reduce_max(amps, axis=-1, keepdims=True))  # [b, t, k]
    peak = rel_amps >= min_relative_amplitude  # [b, t, k]
    peak_f = tf.cast(peak, tf.float32)
    max_freq = tf.reduce_max(tf.where(peak, freqs, 0.0), axis=-1, keepdims=True)  # [b, t, 1]

    ratios = tf.range(1.0, n_harmonics + 1.0)
    partials = f0[..., tf.newaxis] * ratios  # [b, t, c, n]
    # Predicted -> measured.
    distance = tf.abs(partials[..., tf.newaxis] - freqs[:, :, tf.newaxis, tf.newaxis, :])  # [b, t, c, n, k]
    distance = tf.where(peak[:, :, tf.newaxis, tf.newaxis, :], distance, big)
    nearest = tf.argmin(distance, axis=-1)  # [b, t, c, n]
    df_pm = tf.reduce_min(distance, axis=-1)
    a_pm = tf.gather(rel_amps, nearest, batch_dims=2)  # [b, t, c, n]
    scaled = df_pm * tf.pow(partials, -p)
    term_pm = scaled + a_pm * (q * scaled - r)
    # Partials up to the highest peak (the first always counts).
    used = tf.cast((partials <= max_freq[..., tf.newaxis] * 1.03) | (ratios == 1.0), tf.float32)
    used *= tf.cast(max_freq[..., tf.newaxis] > 0.0, tf.float32)
    safe_term_pm = tf.where(used > 0.0, term_pm, 0.0)
    e_pm = core.safe_divide(tf.reduce_sum(safe_term_pm * used, axis=-1), tf.reduce_sum(used, axis=-1))
    # Measured -> predicted: nearest partial n = round(f_k / f0), clipped to 1..n_harmonics.
    n_nearest = tf.clip_by_value(tf.round(freqs[:, :, tf.newaxis, :] / f0[..., tf.newaxis]), 1.0,
                                 float(n_harmonics))  # [b, t, c, k]
    df_mp = tf.abs(freqs[:, :, tf.newaxis, :] - tf.stop_gradient(n_nearest) * f0[..., tf.newaxis])
    scaled = df_mp * tf.pow(freqs[:, :, tf.newaxis, :], -p)
    term_mp = scaled + rel_amps[:, :, tf.newaxis, :] * (q * scaled - r)
    weights = peak_f[:, :, tf.newaxis, :]
    e_mp = core.safe_divide(tf.reduce_sum(term_mp * weights, axis=-1), tf.reduce_sum(weights, axis=-1))
    return e_pm + rho * e_mp


@register("inverse_losses")
class InverseTWMLoss(Loss):
    """Two-way mismatch loss: how badly f0 candidates explain measured sinusoids (see twm_errors).

    Args:
      weight: scale of the loss.
      n_harmonics, p, q, r, rho, min_relative_amplitude: see twm_errors (Maher & Beauchamp
        defaults p=0.5, q=1.4, r=0.5, rho=0.33).
      stop_gradient_sinusoids: treat the sinusoids as fixed targets (gradients reach f0 only).

    Call: `loss(f0_candidates, sin_freqs, sin_amps)` -> weight * mean error over batch, frames
    and candidates. `get_errors(...)` returns the per-candidate errors `[batch, n_frames,
    n_candidates]`.
    """

    def __init__(self, weight: float = 1.0, n_harmonics: int = 20, p: float = 0.5, q: float = 1.4,
                 r: float = 0.5, rho: float = 0.33, min_relative_amplitude: float = 1e-3,
                 stop_gradient_sinusoids: bool = True, name: str = "twm_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight = non_negative_float("`weight`", weight)
        self.n_harmonics = positive_int("`n_harmonics`", n_harmonics)
        self.p = positive_float("`p`", p)
        self.q = non_negative_float("`q`", q)
        self.r = non_negative_float("`r`", r)
        self.rho = non_negative_float("`rho`", rho)
        self.min_relative_amplitude = non_negative_float("`min_relative_amplitude`", min_relative_amplitude)
        self.stop_gradient_sinusoids = bool(stop_gradient_sinusoids)

    def get_config(self):
        config = super().get_config()
        config.update(weight=self.weight, n_harmonics=self.n_harmonics, p=self.p, q=self.q, r=self.r,
                      rho=self.rho, min_relative_amplitude=self.min_relative_amplitude,
                      stop_gradient_sinusoids=self.stop_gradient_sinusoids)
        return config

    def get_errors(self, f0_candidates, sin_freqs, sin_amps) -> tf.Tensor:
        """Per-candidate TWM errors `[batch, n_frames, n_candidates]`."""
        sin_freqs = core.tf_float32(sin_freqs, "sin_freqs")
        sin_amps = core.tf_float32(sin_amps, "sin_amps")
        if self.stop_gradient_sinusoids:
            sin_freqs, sin_amps = tf.stop_gradient(sin_freqs), tf.stop_gradient(sin_amps)
        return twm_errors(f0_candidates, sin_freqs, sin_amps, self.n_harmonics, self.p, self.q, self.r,
                          self.rho, self.min_relative_amplitude)

    def call(self, f0_candidates, sin_freqs, sin_amps):
        return self.weight * tf.reduce_mean(self.get_errors(f0_candidates, sin_freqs, sin_amps))


@register("inverse_losses")
class HarmonicDistributionPrior(Loss):
    """Prior favouring energy in lower harmonics: weight * mean_frames sum_k d_k ((k-1)/(K-1))^exponent.

    d is the distribution normalised to sum to 1 per frame; the penalty is 0 when all energy is
    in the fundamental and 1 when all is in the top harmonic (a normalised spectral centroid in
    harmonic number for exponent 1; larger exponents tolerate low harmonics more).

    Call: `loss(harm_dist)` with `[batch, n_frames, n_harmonics]` non-negative values.
    """

    def __init__(self, weight: float = 1.0, exponent: float = 1.0, name: str = "harmonic_distribution_prior",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight = non_negative_float("`weight`", weight)
        self.exponent = positive_float("`exponent`", exponent)

    def get_config(self):
        config = super().get_config()
        config.update(weight=self.weight, exponent=self.exponent)
        return config

    def call(self, harm_dist):
        harm_dist = _frames(harm_dist, "harm_dist")
        n_harmonics = harm_dist.shape[-1]
        if n_harmonics is None or n_harmonics < 2:
            raise ValueError(f"`harm_dist` needs at least 2 harmonics on its last axis, "
                             f"got {harm_dist.shape.as_list()}.")
        position = tf.pow(tf.range(n_harmonics, dtype=tf.float32) / (n_harmonics - 1.0), self.exponent)
        penalty = tf.reduce_sum(_normalized_weights(harm_dist) * position, axis=-1)
        return self.weight * tf.reduce_mean(penalty)
