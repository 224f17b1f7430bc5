"""Synthesizers: Processors that turn frame-rate controls into audio.

Controls are float32 `[batch, n_frames, channels]` (rank 2 `[batch, n_frames]` is accepted for
single-channel controls); audio is `[batch, n_samples]`. The DSP lives in ddsp_models.core.
"""
import tensorflow as tf

from ddsp_models import core, seeding
from ddsp_models.gin_utils import register
from ddsp_models.processors import Processor, TensorDict, check_divides, check_frames, check_same_size


def _scaled(scale_fn, x):
    return x if scale_fn is None else scale_fn(x)


@register("synths")
class TensorToAudio(Processor):
    """Identity "synth": samples `[batch, n_samples, 1]` -> audio `[batch, n_samples]`."""

    def __init__(self, name: str = "tensor_to_audio", **kwargs):
        super().__init__(name=name, **kwargs)

    def get_controls(self, samples) -> TensorDict:
        """Args: samples `[batch, n_samples, 1]`. Returns {'samples': samples}."""
        return {"samples": samples}

    def get_signal(self, samples) -> tf.Tensor:
        """The samples without their channel axis, `[batch, n_samples]`."""
        return tf.squeeze(samples, 2)


@register("synths")
class Harmonic(Processor):
    """Harmonic (additive) synthesizer: sum_k A(t) c_k(t) sin(k phi(t)), phi' = 2 pi f0(t).

    Args:
      n_samples: output length, samples (a multiple of the number of frames).
      sample_rate: Hz.
      scale_fn: squashing applied to amplitudes and harmonic_distribution (None: use as given).
      normalize_below_nyquist: zero harmonics at or above Nyquist before normalising the
        distribution to sum to 1 (otherwise normalise all harmonics).
      amp_resample_method: 'window' (Hann overlap-add), 'linear', 'nearest' or 'cubic'.
      use_angular_cumsum: False (the original's default): each harmonic accumulates its own
        float32 phase, as the original DDSP does (identical numbers; the phase drifts over
        long signals). True: the phase of f0 is accumulated once in float64 (accurate to
        ~1e-6 and faster; see core.harmonic_synthesis).
      name: processor name (ProcessorGroup keys).
    """

    def __init__(self, n_samples: int = 64000, sample_rate: int = 16000, scale_fn=core.exp_sigmoid,
                 normalize_below_nyquist: bool = True, amp_resample_method: str = "window",
                 use_angular_cumsum: bool = False, name: str = "harmonic", **kwargs):
        super().__init__(name=name, **kwargs)
        if amp_resample_method not in core.RESAMPLE_METHODS:
            raise ValueError(f"Harmonic `amp_resample_method` must be one of {list(core.RESAMPLE_METHODS)}, "
                             f"got {amp_resample_method!r}.")
        self.n_samples = int(n_samples)
        self.sample_rate = int(sample_rate)
        self.scale_fn = scale_fn
        self.normalize_below_nyquist = normalize_below_nyquist
        self.amp_resample_method = amp_resample_method
        self.use_angular_cumsum = use_angular_cumsum

    def get_controls(self, amplitudes, harmonic_distribution, f0_hz) -> TensorDict:
        """Scales network outputs into synthesizer controls.

        Args:
          amplitudes: overall amplitude (pre-scale_fn), `[batch, n_frames, 1]`.
          harmonic_distribution: relative harmonic amplitudes (pre-scale_fn),
            `[batch, n_frames, n_harmonics]`.
          f0_hz: fundamental frequency, Hz, `[batch, n_frames(_f0), 1]`.

        Returns:
          amplitudes, harmonic_distribution (sums to 1 over audible harmonics), f0_hz.
        """
        amplitudes = check_frames(amplitudes, "amplitudes", channels=1)
        harmonic_distribution = check_frames(harmonic_distribution, "harmonic_distribution", ranks=(3,))
        f0_hz = check_frames(f0_hz, "f0_hz", channels=1)
        self._check_shapes(amplitudes, harmonic_distribution, f0_hz)
        amplitudes = _scaled(self.scale_fn, amplitudes)
        harmonic_distribution = _scaled(self.scale_fn, harmonic_distribution)
        if self.normalize_below_nyquist:
            # Nyquist test at the distribution's frame rate.
            f0_frames = f0_hz
            if f0_hz.shape[1] != harmonic_distribution.shape[1]:
                f0_frames = core.resample(f0_hz, harmonic_distribution.shape[1], method="linear")
            harmonic_distribution = core.normalize_harmonics(harmonic_distribution, f0_frames,
                                                             self.sample_rate)
        else:
            harmonic_distribution = core.normalize_harmonics(harmonic_distribution)
        return {"amplitudes": amplitudes, "harmonic_distribution": harmonic_distribution, "f0_hz": f0_hz}

    def get_signal(self, amplitudes, harmonic_distribution, f0_hz) -> tf.Tensor:
        """Audio `[batch, n_samples]` from scaled controls (see get_controls)."""
        amplitudes = check_frames(amplitudes, "amplitudes", channels=1)
        harmonic_distribution = check_frames(harmonic_distribution, "harmonic_distribution", ranks=(3,))
        f0_hz = check_frames(f0_hz, "f0_hz", channels=1)
        self._check_shapes(amplitudes, harmonic_distribution, f0_hz)
        return core.harmonic_synthesis(
            frequencies=f0_hz, amplitudes=amplitudes, harmonic_distribution=harmonic_distribution,
            n_samples=self.n_samples, sample_rate=self.sample_rate,
            amp_resample_method=self.amp_resample_method, use_angular_cumsum=self.use_angular_cumsum)

    def _check_shapes(self, amplitudes, harmonic_distribution, f0_hz) -> None:
        check_same_size({"amplitudes": amplitudes, "harmonic_distribution": harmonic_distribution,
                         "f0_hz": f0_hz}, axis=0, what="batch sizes in Harmonic")
        check_same_size({"amplitudes": amplitudes, "harmonic_distribution": harmonic_distribution},
                        axis=1, what="numbers of frames in Harmonic")
        if self.amp_resample_method == "window":
            check_divides(self.n_samples, harmonic_distribution.shape[1], "harmonic_distribution",
                          "Harmonic")


@register("synths")
class FilteredNoise(Processor):
    """Uniform white noise in [-1, 1] shaped by time-varying linear-phase FIR filters.

    Args:
      n_samples: output length, samples (a multiple of the number of frames).
      window_size: FIR length, samples (core.frequency_filter; at most 2 * (n_bands - 1)).
      scale_fn: squashing of magnitudes (None: use as given).
      initial_bias: added to the raw magnitudes before scale_fn (starts quiet).
      name: processor name.
    """

    def __init__(self, n_samples: int = 64000, window_size: int = 257, scale_fn=core.exp_sigmoid,
                 initial_bias: float = -5.0, name: str = "filtered_noise", **kwargs):
        super().__init__(name=name, **kwargs)
        self.n_samples = int(n_samples)
        self.window_size = int(window_size)
        self.scale_fn = scale_fn
        self.initial_bias = float(initial_bias)

    def get_controls(self, magnitudes) -> TensorDict:
        """Args: magnitudes `[batch, n_frames, n_bands]` (pre-scale_fn) on a uniform grid from
        0 Hz to Nyquist. Returns {'magnitudes': linear gains, same shape}."""
        magnitudes = self._check_magnitudes(magnitudes)
        if self.scale_fn is not None:
            magnitudes = self.scale_fn(magnitudes + self.initial_bias)
        return {"magnitudes": magnitudes}

    def get_signal(self, magnitudes) -> tf.Tensor:
        """Filtered noise `[batch, n_samples]` from linear gains `[batch, n_frames, n_bands]`."""
        magnitudes = self._check_magnitudes(magnitudes)
        noise = self.make_noise(tf.shape(magnitudes)[0])
        return core.frequency_filter(noise, magnitudes, window_size=self.window_size)

    def make_noise(self, batch_size) -> tf.Tensor:
        """Uniform noise in [-1, 1], `[batch_size, n_samples]`."""
        return seeding.uniform([batch_size, self.n_samples], minval=-1.0, maxval=1.0)

    def _check_magnitudes(self, magnitudes) -> tf.Tensor:
        magnitudes = check_frames(magnitudes, "magnitudes", ranks=(3,))
        check_divides(self.n_samples, magnitudes.shape[1], "magnitudes", "FilteredNoise")
        return magnitudes


@register("synths")
class Sinusoidal(Processor):
    """Bank of freely-tuned sinusoids: sum_i a_i(t) sin(phi_i(t)), phi_i' = 2 pi f_i(t).

    Args:
      n_samples: output length, samples.
      sample_rate: Hz; sinusoids at or above Nyquist are silenced.
      amp_scale_fn: squashing of amplitudes (None: use as given).
      amp_resample_method: 'window', 'linear', 'nearest' or 'cubic' amplitude upsampling.
      freq_scale_fn: network outputs -> Hz (core.frequencies_sigmoid, the default, or
        core.frequencies_softmax ...); None: frequencies are already in Hz.
      name: processor name.
      use_angular_cumsum: accumulate phases with core.angular_cumsum (accurate over long
        signals) instead of the original's float32 running sum (not an argument of the
        original; default False as there).
    """

    def __init__(self, n_samples: int = 64000, sample_rate: int = 16000, amp_scale_fn=core.exp_sigmoid,
                 amp_resample_method: str = "window", freq_scale_fn=core.frequencies_sigmoid,
                 name: str = "sinusoidal", use_angular_cumsum: bool = False, **kwargs):
        super().__init__(name=name, **kwargs)
        self.n_samples = int(n_samples)
        self.sample_rate = int(sample_rate)
        self.amp_scale_fn = amp_scale_fn
        self.amp_resample_method = amp_resample_method
        self.freq_scale_fn = freq_scale_fn
        self.use_angular_cumsum = use_angular_cumsum

    def get_controls(self, amplitudes, frequencies) -> TensorDict:
        """Args:
          amplitudes: `[batch, n_frames, n_sinusoids]` (pre-amp_scale_fn).
          frequencies: `[batch, n_frames, n_sinusoids * depth]` network outputs (or Hz,
            `[batch, n_frames, n_sinusoids]`, when freq_scale_fn is None).

        Returns: amplitudes and frequencies in Hz; with a freq_scale_fn, amplitudes of
        sinusoids at or above Nyquist are zeroed here (otherwise only when synthesizing).
        """
        amplitudes = check_frames(amplitudes, "amplitudes", ranks=(3,))
        frequencies = check_frames(frequencies, "frequencies", ranks=(3, 4))
        amplitudes = _scaled(self.amp_scale_fn, amplitudes)
        if self.freq_scale_fn is not None:
            frequencies = self.freq_scale_fn(frequencies)
            self._check_shapes(amplitudes, frequencies)
            amplitudes = core.remove_above_nyquist(frequencies, amplitudes, self.sample_rate)
        self._check_shapes(amplitudes, frequencies)
        return {"amplitudes": amplitudes, "frequencies": frequencies}

    def get_signal(self, amplitudes, frequencies) -> tf.Tensor:
        """Audio `[batch, n_samples]` from amplitudes and frequencies (Hz), both
        `[batch, n_frames, n_sinusoids]`."""
        amplitudes = check_frames(amplitudes, "amplitudes", ranks=(3,))
        frequencies = check_frames(frequencies, "frequencies", ranks=(3,))
        self._check_shapes(amplitudes, frequencies)
        amplitude_envelopes = core.resample(amplitudes, self.n_samples, method=self.amp_resample_method)
        frequency_envelopes = core.resample(frequencies, self.n_samples, method="linear")
        return core.oscillator_bank(frequency_envelopes, amplitude_envelopes, sample_rate=self.sample_rate,
                                    use_angular_cumsum=self.use_angular_cumsum)

    def _check_shapes(self, amplitudes, frequencies) -> None:
        named = {"amplitudes": amplitudes, "frequencies": frequencies}
        check_same_size(named, axis=0, what="batch sizes in Sinusoidal")
        check_same_size(named, axis=-1, what="numbers of sinusoids in Sinusoidal (after freq_scale_fn)")
        if self.amp_resample_method == "window":
            check_divides(self.n_samples, amplitudes.shape[1], "amplitudes", "Sinusoidal")


@register("synths")
class Wavetable(Processor):
    """Wavetable oscillator: reads one period per frame at the phase of f0.

    Args:
      n_samples: output length, samples (a multiple of the number of amplitude frames).
      sample_rate: Hz.
      scale_fn: squashing of amplitudes and wavetables (None: use as given).
      name: processor name.
    """

    def __init__(self, n_samples: int = 64000, sample_rate: int = 16000, scale_fn=core.exp_sigmoid,
                 name: str = "wavetable", **kwargs):
        super().__init__(name=name, **kwargs)
        self.n_samples = int(n_samples)
        self.sample_rate = int(sample_rate)
        self.scale_fn = scale_fn

    def get_controls(self, amplitudes, wavetables, f0_hz) -> TensorDict:
        """Args:
          amplitudes: `[batch, n_frames, 1]` (pre-scale_fn).
          wavetables: one period per frame `[batch, n_frames, n_wavetable]`, or one for all
            frames `[batch, n_wavetable]`.
          f0_hz: Hz, `[batch, n_frames, 1]`.
        """
        amplitudes = check_frames(amplitudes, "amplitudes", channels=1)
        wavetables = self._check_wavetables(wavetables)
        f0_hz = check_frames(f0_hz, "f0_hz", channels=1)
        self._check_shapes(amplitudes, wavetables, f0_hz)
        amplitudes = _scaled(self.scale_fn, amplitudes)
        wavetables = _scaled(self.scale_fn, wavetables)
        return {"amplitudes": amplitudes, "wavetables": wavetables, "f0_hz": f0_hz}

    def get_signal(self, amplitudes, wavetables, f0_hz) -> tf.Tensor:
        """Audio `[batch, n_samples]`."""
        amplitudes = check_frames(amplitudes, "amplitudes", channels=1)
        wavetables = self._check_wavetables(wavetables)
        f0_hz = check_frames(f0_hz, "f0_hz", channels=1)
        self._check_shapes(amplitudes, wavetables, f0_hz)
        return core.wavetable_synthesis(frequencies=f0_hz, amplitudes=amplitudes, wavetables=wavetables,
                                        n_samples=self.n_samples, sample_rate=self.sample_rate)

    @staticmethod
    def _check_wavetables(wavetables) -> tf.Tensor:
        wavetables = core.tf_float32(wavetables, "wavetables")
        core.ensure_rank(wavetables, (2, 3), "wavetables")
        return wavetables[:, tf.newaxis, :] if wavetables.shape.rank == 2 else wavetables

    def _check_shapes(self, amplitudes, wavetables, f0_hz) -> None:
        check_same_size({"amplitudes": amplitudes, "wavetables": wavetables, "f0_hz": f0_hz},
                        axis=0, what="batch sizes in Wavetable")
        if amplitudes.shape[1] is not None and amplitudes.shape[1] > 1:
            check_divides(self.n_samples, amplitudes.shape[1], "amplitudes", "Wavetable")
