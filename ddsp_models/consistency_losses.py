"""The original DDSP 3.7.0's experimental losses (re-exported by ddsp_models.losses).

Consistency between synthesizer representations (FilteredNoiseConsistencyLoss,
HarmonicConsistencyLoss, KDEConsistencyLoss, WassersteinConsistencyLoss), the two-way
mismatch f0 loss (TWMLoss) and the MIDI-decoding HMM (HmmTranscriber), with the original's
arguments and numbers; its tensorflow_probability mixtures and HMM are written out here
(Gaussian mixtures in log space, forward algorithm, Viterbi). Shapes: sinusoid amplitudes
and frequencies (Hz) `[batch, time, n]`; f0 `[batch, time, 1]`.

ddsp_models.inverse_losses holds this project's own versions used by InverseSynthesis.
"""
import math

import numpy as np
import tensorflow as tf

from ddsp_models import core
from ddsp_models.core import hz_to_midi, safe_divide, tf_float32
from ddsp_models.gin_utils import register
from ddsp_models.losses import Loss, amp_loss, freq_loss

__all__ = ["FilteredNoiseConsistencyLoss", "HarmonicConsistencyLoss", "WassersteinConsistencyLoss",
           "wasserstein_distance", "KDEConsistencyLoss", "TWMLoss", "HmmTranscriber"]

_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def _normal_log_prob(x, loc, scale):
    """log N(x; loc, scale), elementwise with broadcasting."""
    z = (x - loc) / scale
    return -0.5 * z * z - tf.math.log(tf_float32(scale, "scale")) - _HALF_LOG_TWO_PI


def _gaussian_kde_log_prob(points, weights, centres, scale):
    """log sum_k w_k N(x; c_k, scale) for every point x.

    Args:
      points: `[..., n_points]`; weights, centres: `[..., n_components]` (weights sum to one).

    Returns:
      `[..., n_points]`.
    """
    log_components = _normal_log_prob(points[..., :, tf.newaxis], centres[..., tf.newaxis, :], scale)
    return tf.reduce_logsumexp(log_components + tf.math.log(weights)[..., tf.newaxis, :], axis=-1)


def _normalized_amplitudes(amps):
    """Amplitudes as mixture weights: zeros raised to 1e-7, then normalised over the last axis."""
    amps = tf.where(amps == 0.0, 1e-7 * tf.ones_like(amps), amps)
    return safe_divide(amps, tf.reduce_sum(amps, axis=-1, keepdims=True))


@register("losses")
class FilteredNoiseConsistencyLoss(Loss):
    """weight * L1 difference of two filtered-noise magnitude sets (the original's amp_loss).

    Call: `loss(noise_magnitudes, noise_magnitudes_target)`.
    """

    def __init__(self, weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight

    def call(self, noise_magnitudes, noise_magnitudes_target):
        return self.weight * amp_loss(noise_magnitudes, noise_magnitudes_target)


@register("losses")
class HarmonicConsistencyLoss(Loss):
    """Agreement of two harmonic-synth controls, returned as a dict of three losses.

    harm_amp_loss: amp_weight * L1(harm_amp, target); harm_dist_loss and f0_hz_loss (in MIDI)
    are L1 differences weighted by (harm_amp_target >= amp_threshold).

    Call: `loss(harm_amp, harm_amp_target, harm_dist, harm_dist_target, f0_hz, f0_hz_target)`.
    """

    def __init__(self, amp_weight: float = 1.0, dist_weight: float = 1.0, f0_weight: float = 1.0,
                 amp_threshold: float = 1e-4, **kwargs):
        super().__init__(**kwargs)
        self.amp_weight = amp_weight
        self.dist_weight = dist_weight
        self.f0_weight = f0_weight
        self.amp_threshold = amp_threshold

    def call(self, harm_amp, harm_amp_target, harm_dist, harm_dist_target, f0_hz, f0_hz_target):
        weights = tf.cast(tf_float32(harm_amp_target, "harm_amp_target") >= self.amp_threshold, tf.float32)
        return {"harm_amp_loss": self.amp_weight * amp_loss(harm_amp, harm_amp_target),
                "harm_dist_loss": self.dist_weight * amp_loss(harm_dist, harm_dist_target, weights=weights),
                "f0_hz_loss": self.f0_weight * freq_loss(f0_hz, f0_hz_target, weights=weights)}


def wasserstein_distance(u_values, v_values, u_weights, v_weights, p: float = 1.0):
    """Differentiable 1-D Wasserstein-style distance between two weighted point sets (the
    original's port of scipy.stats' algorithm).

    Between consecutive sorted points of both sets, |U(x) - V(x)|^p times the gap is summed,
    where U, V are the running sums of the (sorted) weights, not divided by their totals
    (as the original: weights are meant to be normalised), or the empirical CDFs for None.

    Args:
      u_values, v_values: `[..., n]`; u_weights, v_weights: `[..., n]` or None.
      p: 1 (Wasserstein) or 2 (energy distance).

    Returns:
      `[...]`.
    """
    u_values = tf_float32(u_values, "u_values")
    v_values = tf_float32(v_values, "v_values")
    u_sorter = tf.argsort(u_values, axis=-1)
    v_sorter = tf.argsort(v_values, axis=-1)
    all_values = tf.sort(tf.concat([u_values, v_values], axis=-1), axis=-1)
    deltas = core.diff(all_values, axis=-1)
    batch_dims = len(u_values.shape) - 1

    def gather(x, index):
        return tf.gather(x, index, axis=-1, batch_dims=batch_dims)

    def cdf(values, sorter, weights):
        indices = tf.searchsorted(gather(values, sorter), all_values[..., :-1], side="right")
        if weights is None:
            return tf.cast(indices, tf.float32) / float(values.shape[-1])
        weights = tf_float32(weights, "weights")
        cumulative = tf.concat([tf.zeros_like(weights)[..., 0:1], tf.cumsum(gather(weights, sorter), axis=-1)],
                               axis=-1)
        return gather(cumulative, indices)

    u_cdf = cdf(u_values, u_sorter, u_weights)
    v_cdf = cdf(v_values, v_sorter, v_weights)
    return tf.reduce_sum(deltas * tf.abs(u_cdf - v_cdf) ** p, axis=-1) ** (1.0 / p)


@register("losses")
class WassersteinConsistencyLoss(Loss):
    """weight * mean wasserstein_distance between two sinusoid sets, frequencies in MIDI.

    As in the original, the loss is 0 when `midi` is False (only the MIDI scale is implemented).

    Call: `loss(amps_a, freqs_a, amps_b, freqs_b)`.
    """

    def __init__(self, weight: float = 1.0, midi: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight
        self.midi = midi

    def call(self, amps_a, freqs_a, amps_b, freqs_b):
        if self.weight > 0.0 and self.midi:
            distance = wasserstein_distance(hz_to_midi(freqs_a), hz_to_midi(freqs_b), amps_a, amps_b, p=1.0)
            return tf.reduce_mean(self.weight * distance)
        return tf.constant(0.0)


@register("losses")
class KDEConsistencyLoss(Loss):
    """How well each sinusoid set explains the other under Gaussian kernel densities in MIDI.

    weight_a * mean -log p(a | b) + weight_b * mean -log p(b | a) + weight_mean_amp *
    mean |mean amp_a - mean amp_b|, where p(. | b) is the amplitude-weighted mixture of
    Gaussians (scale_b semitones) at b's frequencies and each -log p is averaged over the
    source sinusoids weighted by their normalised amplitudes.

    Call: `loss(amps_a, freqs_a, amps_b, freqs_b)`.
    """

    def __init__(self, weight_a: float = 1.0, weight_b: float = 1.0, weight_mean_amp: float = 1.0,
                 scale_a: float = 0.1, scale_b: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.weight_a = weight_a
        self.weight_b = weight_b
        self.weight_mean_amp = weight_mean_amp
        self.scale_a = scale_a
        self.scale_b = scale_b

    def call(self, amps_a, freqs_a, amps_b, freqs_b):
        amps_a, freqs_a = tf_float32(amps_a, "amps_a"), tf_float32(freqs_a, "freqs_a")
        amps_b, freqs_b = tf_float32(amps_b, "amps_b"), tf_float32(freqs_b, "freqs_b")
        loss = tf.constant(0.0)
        if self.weight_a > 0.0:
            loss += tf.reduce_mean(self.weight_a * self.nll(amps_a, freqs_a, amps_b, freqs_b, self.scale_b))
        if self.weight_b > 0.0:
            loss += tf.reduce_mean(self.weight_b * self.nll(amps_b, freqs_b, amps_a, freqs_a, self.scale_a))
        if self.weight_mean_amp > 0.0:
            mean_difference = tf.reduce_mean(amps_a, axis=-1) - tf.reduce_mean(amps_b, axis=-1)
            loss += self.weight_mean_amp * tf.reduce_mean(tf.abs(mean_difference))
        return loss

    def nll(self, amps, freqs, amps_target, freqs_target, scale_target):
        """-log p(source | target) per frame, `[batch, time]`."""
        log_prob = _gaussian_kde_log_prob(hz_to_midi(freqs), _normalized_amplitudes(amps_target),
                                          hz_to_midi(freqs_target), scale_target)
        amps_norm = safe_divide(amps, tf.reduce_sum(amps, axis=-1, keepdims=True))
        return tf.reduce_mean(-log_prob * amps_norm, axis=-1)


@register("losses")
class TWMLoss(Loss):
    """Probabilistic two-way mismatch between f0 candidates and sinusoids (the original's).

    For each candidate: -log p(sinusoids | harmonics), the amplitude-weighted NLL of the
    frequency ratios f / f0 under n_harmonic_gaussians Gaussians (harmonics_scale) at 1, 2,
    ...; and -log p(harmonics | sinusoids), the NLL of its first n_harmonic_points harmonics
    (MIDI, weighted 1 .. 1/n, those above Nyquist dropped) under the sinusoids' kernel
    density (sinusoids_scale semitones). The weighted sum is soft-minimised over candidates.

    Call: `loss(f0_candidates, freqs, amps)`, all `[batch, time, n]` (Hz, Hz, linear).
    """

    def __init__(self, sinusoids_weight: float = 1.0, harmonics_weight: float = 1.0,
                 sinusoids_scale: float = 0.5, harmonics_scale: float = 0.2, n_harmonic_points: int = 10,
                 n_harmonic_gaussians: int = 30, softmin_temperature: float = 1.0, sample_rate: int = 16000,
                 **kwargs):
        super().__init__(**kwargs)
        self.softmin_temperature = softmin_temperature
        self.sample_rate = sample_rate
        self.sinusoids_weight = sinusoids_weight
        self.harmonics_weight = harmonics_weight
        self.sinusoids_scale = sinusoids_scale
        self.n_harmonic_points = n_harmonic_points
        self.harmonics_scale = harmonics_scale
        self.n_harmonic_gaussians = n_harmonic_gaussians

    def call(self, f0_candidates, freqs, amps):
        combined = self._combined(f0_candidates, freqs, amps)
        return tf.reduce_mean(combined * tf.nn.softmax(-combined / self.softmin_temperature, axis=-1))

    def _combined(self, f0_candidates, freqs, amps):
        sinusoids_loss, harmonics_loss = self.get_loss_tensors(f0_candidates, freqs, amps)
        return self.sinusoids_weight * sinusoids_loss + self.harmonics_weight * harmonics_loss

    def predict_f0(self, f0_candidates, freqs, amps) -> np.ndarray:
        """The candidate of lowest loss per frame, numpy `[batch, time, 1]` (Hz)."""
        loss = np.array(self._combined(f0_candidates, freqs, amps))
        index = np.nanargmin(loss, axis=-1)[..., np.newaxis]
        return np.take_along_axis(np.array(f0_candidates), index, axis=-1)

    def get_loss_tensors(self, f0_candidates, freqs, amps):
        """(-log p(sinusoids | harmonics), -log p(harmonics | sinusoids)), each
        `[batch, time, n_candidates]`."""
        f0_candidates = tf_float32(f0_candidates, "f0_candidates")
        freqs, amps = tf_float32(freqs, "freqs"), tf_float32(amps, "amps")
        ratios = safe_divide(freqs[:, :, tf.newaxis, :], f0_candidates[:, :, :, tf.newaxis])  # [b, t, c, s]
        n_gaussians = self.n_harmonic_gaussians
        harmonic_numbers = tf.range(1, n_gaussians + 1, dtype=tf.float32)
        nll_sinusoids = -_gaussian_kde_log_prob(ratios, tf.ones([n_gaussians]) / n_gaussians, harmonic_numbers,
                                                self.harmonics_scale)
        weights = amps[:, :, tf.newaxis, :]
        sinusoids_loss = safe_divide(tf.reduce_sum(nll_sinusoids * weights, axis=-1),
                                     tf.reduce_sum(weights, axis=-1))

        harmonics = self.get_candidate_harmonics(f0_candidates, as_midi=True)  # [b, t, c, h]
        shape = tf.shape(harmonics)
        points = tf.reshape(harmonics, [shape[0], shape[1], -1])  # [b, t, c * h]
        nll_harmonics = -_gaussian_kde_log_prob(points, _normalized_amplitudes(amps), hz_to_midi(freqs),
                                                self.sinusoids_scale)
        nll_harmonics = tf.reshape(nll_harmonics, shape)
        prior = tf.linspace(1.0, 1.0 / self.n_harmonic_points, self.n_harmonic_points)
        harmonics_loss = nll_harmonics * prior
        nyquist_midi = hz_to_midi(self.sample_rate / 2.0)
        mask = tf.where(harmonics < nyquist_midi, tf.ones_like(harmonics_loss), tf.zeros_like(harmonics_loss))
        harmonics_loss *= safe_divide(mask, tf.reduce_mean(mask, axis=-1, keepdims=True))
        return sinusoids_loss, tf.reduce_mean(harmonics_loss, axis=-1)

    def get_candidate_harmonics(self, f0_candidates, as_midi: bool = True):
        """k * f0 for k = 1 .. n_harmonic_points, `[batch, time, n_candidates, n_harmonic_points]`."""
        n = tf.range(1, self.n_harmonic_points + 1, dtype=tf.float32)
        harmonics = tf_float32(f0_candidates, "f0_candidates")[:, :, :, tf.newaxis] * n
        return hz_to_midi(harmonics) if as_midi else harmonics


@register("losses")
class HmmTranscriber(tf.Module):
    """HMM decoding MIDI from f0 (MIDI) and amplitude, and its negative log-likelihood.

    States: 0 (silence) and pitches 1 .. n_pitches - 1, uniform prior; a state holds with
    probability 1 - 1 / avg_length, else moves to any other. Observations [pitch, amps] are
    diagonal Gaussians: pitch ~ N(k, midi_std) (state 0: N(n_pitches / 2, n_pitches)),
    amps ~ N(amps_on_center, amps_on_scale) (state 0: N(amps_off_center, amps_off_scale)).
    The original builds it with tensorflow_probability; here the forward algorithm and
    Viterbi decoding are written in TF.

    Call: `transcriber(pitch, amps)` -> weight * mean NLL per timestep; `predict_midi`.
    pitch and amps are `[batch, time, 1]`.
    """

    def __init__(self, avg_length: int = 200, midi_std: float = 0.5, amps_on_center: float = 1.5,
                 amps_on_scale: float = 0.5, amps_off_center: float = 0.0, amps_off_scale: float = 0.1,
                 n_timesteps: int = 1000, n_pitches: int = 128, weight: float = 1.0, name: str = "HmmTranscriber"):
        super().__init__(name=name)
        hold = 1.0 - 1.0 / avg_length
        other = (1.0 - hold) / (n_pitches - 1)
        transitions = (hold - other) * np.eye(n_pitches) + other * np.ones([n_pitches, n_pitches])
        transitions /= transitions.sum(axis=1, keepdims=True)
        self.log_initial = tf.constant(np.full(n_pitches, -np.log(n_pitches)), tf.float32)
        self.log_transitions = tf.constant(np.log(transitions), tf.float32)
        pitch_loc = np.concatenate([[n_pitches / 2.0], np.arange(1, n_pitches)])
        pitch_scale = np.concatenate([[float(n_pitches)], np.full(n_pitches - 1, midi_std)])
        amps_loc = np.concatenate([[amps_off_center], np.full(n_pitches - 1, amps_on_center)])
        amps_scale = np.concatenate([[amps_off_scale], np.full(n_pitches - 1, amps_on_scale)])
        self.loc = tf.constant(np.stack([pitch_loc, amps_loc], axis=-1), tf.float32)  # [n_pitches, 2]
        self.scale = tf.constant(np.stack([pitch_scale, amps_scale], axis=-1), tf.float32)
        self.avg_length = avg_length
        self.midi_std = midi_std
        self.n_timesteps = n_timesteps
        self.n_pitches = n_pitches
        self.weight = weight

    def __call__(self, pitch, amps):
        return self.nll(pitch, amps)

    @staticmethod
    def straight_through(x, x_quant):
        """x_quant forward, the identity's gradient backward."""
        return x - tf.stop_gradient(x - x_quant)

    def _observation_log_probs(self, pitch, amps):
        """log p(observation_t | state), `[time, batch, n_pitches]`."""
        observations = tf.concat([tf_float32(pitch, "pitch"), tf_float32(amps, "amps")], axis=-1)  # [b, t, 2]
        log_probs = tf.reduce_sum(_normal_log_prob(observations[:, :, tf.newaxis, :], self.loc, self.scale), axis=-1)
        return tf.transpose(log_probs, [1, 0, 2])

    def log_prob(self, pitch, amps):
        """log p(observations) by the forward algorithm, `[batch]`."""
        observed = self._observation_log_probs(pitch, amps)

        def step(alpha, log_obs):
            return tf.reduce_logsumexp(alpha[:, :, tf.newaxis] + self.log_transitions, axis=1) + log_obs

        alpha = tf.foldl(step, observed[1:], initializer=self.log_initial + observed[0])
        return tf.reduce_logsumexp(alpha, axis=-1)

    def nll(self, pitch, amps, per_example_loss: bool = False):
        """weight * negative log-likelihood per timestep (mean over the batch unless per_example_loss)."""
        average = -self.log_prob(pitch, amps) / pitch.shape[1]
        return self.weight * (average if per_example_loss else tf.reduce_mean(average))

    def predict_midi(self, pitch, amps, channel_dim: bool = True, dtype=tf.float32):
        """Viterbi-decoded states (MIDI notes, 0 for silence), `[batch, time, 1]` (or `[batch, time]`)."""
        observed = self._observation_log_probs(pitch, amps)

        def step(carry, log_obs):
            score, _ = carry
            candidates = score[:, :, tf.newaxis] + self.log_transitions  # [b, from, to]
            best = tf.argmax(candidates, axis=1, output_type=tf.int32)
            return tf.reduce_max(candidates, axis=1) + log_obs, best

        first = self.log_initial + observed[0]
        dummy = tf.zeros_like(first, tf.int32)
        scores, backpointers = tf.scan(step, observed[1:], initializer=(first, dummy))
        last_score = scores[-1] if observed.shape[0] > 1 else first
        state = tf.argmax(last_score, axis=-1, output_type=tf.int32)

        def back(state, pointers):
            return tf.gather(pointers, state, batch_dims=1)

        earlier = tf.scan(back, backpointers, initializer=state, reverse=True)  # states of t = 0 .. T - 2
        path = tf.concat([earlier, state[tf.newaxis]], axis=0)  # [time, batch]
        q_pitch = tf.cast(tf.transpose(path), dtype)
        return q_pitch[:, :, tf.newaxis] if channel_dim else q_pitch
