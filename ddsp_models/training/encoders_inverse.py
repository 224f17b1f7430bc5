"""The DDSP-inv encoders of `models.InverseSynthesis`: audio -> sinusoids
(`ResnetSinusoidalEncoder`) and sinusoids -> harmonic-synth controls
(`SinusoidalToHarmonicEncoder`). `encoders` re-exports them (gin ``encoders.<Name>``).
"""
import functools
import inspect

import gin
import keras
import tensorflow as tf

from ddsp_models import core, spectral_ops
from ddsp_models.checks import positive_int
from ddsp_models.gin_utils import register
from ddsp_models.training import nn
from ddsp_models.training.encoders import frame_inputs


def _audio_from(inputs, owner: str) -> tf.Tensor:
    """`[batch, n_samples]` audio from a tensor or a features dict holding 'audio'."""
    if isinstance(inputs, dict):
        (inputs,) = nn.get_features(inputs, ["audio"], owner)
    return core.ensure_audio(inputs, "audio")


def with_current_bindings(fn):
    """`fn` with the gin bindings it would receive now fixed, so that a layer built from a
    config keeps computing the same thing after gin's config changes (e.g. cleared, or
    another model folder parsed by `compat.load_upstream_model`).

    For a gin configurable function, or a scoped reference to one (``@scope/name``, e.g. the
    original's ``@f0_spectral/spectral_ops.compute_logmel``): a function that calls `fn`
    through gin while gin still gives it these bindings (so they show in the operative
    config), else the undecorated function with them. Any other callable is returned as it is.
    """
    scope, configurable = [], fn
    code = getattr(fn, "__code__", None)
    if code is not None and {"fn_or_cls", "scope_components"} <= set(code.co_freevars):
        cells = dict(zip(code.co_freevars, fn.__closure__))  # gin's scoping wrapper
        scope, configurable = list(cells["scope_components"].cell_contents), cells["fn_or_cls"].cell_contents

    def current_bindings():
        try:
            with gin.config_scope(scope):
                return gin.get_bindings(configurable)
        except ValueError:  # not a gin configurable
            return None

    bindings = current_bindings()
    if bindings is None:
        return fn
    fixed = functools.partial(inspect.unwrap(configurable), **bindings)

    @functools.wraps(fixed.func)
    def call(*args, **kwargs):
        return (fn if current_bindings() == bindings else fixed)(*args, **kwargs)

    call.bindings = dict(bindings)
    return call


def _midi_range(value, name: str, owner: str) -> tuple:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner} `{name}` must be a (min, max) pair, got {value!r}.") from None
    if not 0.0 <= lo < hi:
        raise ValueError(f"{owner} `{name}` must satisfy 0 <= min < max, got {value!r}.")
    return lo, hi


def scale_amplitudes(amplitudes) -> tf.Tensor:
    """Linear amplitude -> network scale: (20 log10(a + 1e-4)) / 80 + 1 (about [0, 1])."""
    from ddsp_models.training.preprocessing import scale_db

    return scale_db(core.amplitude_to_db(core.tf_float32(amplitudes, "amplitudes") + 1e-4))


def _sinusoidal_sizes(output_splits) -> tuple:
    """(n_sinusoids, n_freq_bins, n_noise_bands) from the original's `output_splits`."""
    sizes = dict(nn.check_splits(output_splits, "output_splits"))
    expected = {"frequencies", "amplitudes", "noise_magnitudes"}
    if set(sizes) != expected or sizes["frequencies"] % sizes["amplitudes"]:
        raise ValueError(f"ResnetSinusoidalEncoder `output_splits` must name exactly {sorted(expected)}, "
                         f"with 'frequencies' a multiple of 'amplitudes' (sinusoids x bins), got {output_splits!r}.")
    return sizes["amplitudes"], sizes["frequencies"] // sizes["amplitudes"], sizes["noise_magnitudes"]


def spread_frequency_logits(n_sinusoids: int, n_bins: int) -> tf.Tensor:
    """`[n_sinusoids, n_bins]` logit bias: sinusoid i peaks at bin position (i + 0.5) / n of
    [0, 1] with a Gaussian bump of std 1 / n (positions of bins j: j / (n_bins - 1)), scaled
    so that its softmax is peaked there (a log-frequency spread over the range)."""
    centres = (tf.range(n_sinusoids, dtype=tf.float32) + 0.5) / n_sinusoids
    positions = tf.linspace(0.0, 1.0, n_bins)
    return -0.5 * tf.square((positions[tf.newaxis, :] - centres[:, tf.newaxis]) * n_sinusoids)


@register("encoders")
class ResnetSinusoidalEncoder(keras.layers.Layer):
    """Audio -> sinusoids and filtered-noise magnitudes (the DDSP-inv sinusoidal encoder).

    Two modes:

    * the original's (default, `scale_outputs=False`): log-mel frames
      `[batch, n_mel_frames, bins]` of `spectral_fn` (default `spectral_ops.compute_logmel`
      with its defaults: 2048-point FFT, overlap 0.75, 64 bins over 80 - 7600 Hz) are read as
      a one-channel image by the original's `nn.ResNet(size)` ('small' | 'medium' | 'large';
      'tiny', the original's default that its ResNet lacks, is `nn.ResNet2D('tiny')`); the
      features of each frame, flattened, go through one Dense layer per `output_splits`
      entry, in order, and the raw (unscaled) outputs come back at the spectrogram's frame
      rate: `{key: [batch, n_mel_frames, size]}`. The model scales them
      (`models.InverseSynthesis`: sin_freqs = freq_scale_fn(frequencies), sin_amps =
      exp_sigmoid(amplitudes), noise_magnitudes = exp_sigmoid(noise_magnitudes)).
    * this package's (`scale_outputs=True`; models/inverse_synthesis.gin): log-mel frames
      (`spectral_fn`, or the built-in fft_size, overlap, mel_bins, hz_min - hz_max) through
      `nn.ResNet2D(size)` ('tiny' | 'small' | 'large') and one Dense layer to
        sin_amps = exp_sigmoid(logits + amp_bias)                [batch, t, n_sinusoids];
        sin_freqs = core.frequencies_softmax over n_freq_bins bins log-spaced from hz_min
          to hz_max (the softmax-weighted mean bin, per sinusoid)  [batch, t, n_sinusoids], Hz;
        noise_magnitudes = exp_sigmoid(logits + noise_bias)      [batch, t, n_noise_bands],
          linear gains from 0 Hz to Nyquist (for synths.FilteredNoise with scale_fn=None);
      then linearly resampled to n_frames = n_samples * frame_rate / sample_rate frames.

    Args:
      output_splits: (key, size) pairs, the original's form. Original mode: any keys, one
        raw output each (InverseSynthesis reads 'frequencies', 'amplitudes',
        'noise_magnitudes'). Scaled mode: exactly (('frequencies', n_sinusoids *
        n_freq_bins), ('amplitudes', n_sinusoids), ('noise_magnitudes', n_noise_bands)) in
        any order (default: 100 sinusoids of 64 bins, 60 noise bands, as the original).
      spectral_fn: audio `[batch, n_samples]` -> `[batch, frames, bins]` (e.g. a gin-scoped
        `spectral_ops.compute_logmel`, whose bindings are fixed when the encoder is built:
        `with_current_bindings`); None: the mode's default (see above).
      size: ResNet size (see above).
      scale_outputs: this package's scaled mode instead of the original's raw outputs.
      The rest configure the scaled mode only:
      n_sinusoids, n_freq_bins, n_noise_bands: each, when given, replaces the size
        `output_splits` implies (n_freq_bins: softmax bins per sinusoid frequency).
      sample_rate, frame_rate: Hz; the output frame rate.
      fft_size, overlap, mel_bins: log-mel analysis (hop = fft_size * (1 - overlap)).
      hz_min, hz_max: sinusoid frequency range (and the log-mel's), Hz.
      amp_bias, noise_bias: added to the logits before exp_sigmoid (start quiet).
      spread_frequencies: add a fixed bias to the frequency logits that centres sinusoid i
        (of n) at log-frequency position (i + 0.5) / n of [hz_min, hz_max] (a Gaussian bump,
        std 1 / n in bin position), so the sinusoids start spread over the spectrum instead
        of all near the geometric mean (about 400 Hz for 20 - 8000 Hz), where a consistency
        loss pulls them all to the same partial.

    Call: `encoder(audio)` or `encoder({'audio': ...})` -> dict (see the modes).
    """

    def __init__(self, output_splits=(("frequencies", 6400), ("amplitudes", 100), ("noise_magnitudes", 60)),
                 spectral_fn=None, size: str = "tiny", scale_outputs: bool = False, n_sinusoids: int | None = None,
                 n_freq_bins: int | None = None, n_noise_bands: int | None = None, sample_rate: int = 16000,
                 frame_rate: int = 250, fft_size: int = 1024, overlap: float = 0.875, mel_bins: int = 64,
                 hz_min: float = 20.0, hz_max: float = 8000.0, amp_bias: float = -2.0, noise_bias: float = -5.0,
                 spread_frequencies: bool = False, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        owner = "ResnetSinusoidalEncoder"
        if spectral_fn is not None and not callable(spectral_fn):
            raise TypeError(f"{owner} `spectral_fn` must be callable, got {type(spectral_fn).__name__}.")
        # Its gin bindings (the original configs' f0_spectral/compute_logmel) fixed now.
        self.spectral_fn = None if spectral_fn is None else with_current_bindings(spectral_fn)
        self.scale_outputs = bool(scale_outputs)
        if not self.scale_outputs:
            self.output_splits = nn.check_splits(output_splits, f"{owner} output_splits")
            if size == "tiny":
                self.resnet = nn.ResNet2D("tiny")
            elif size in nn.ResNet.SIZES:
                self.resnet = nn.ResNet(size=size)
            else:
                raise ValueError(f"{owner} `size` must be 'tiny' or one of the original's ResNet sizes "
                                 f"{sorted(nn.ResNet.SIZES)} (with scale_outputs=False), got {size!r}.")
            # dense_out_<i>: the original's list `dense_outs` (its checkpoint's dense_outs/<i>).
            self.dense_names = nn.set_layers(self, "dense_out", [keras.layers.Dense(dim)
                                                                 for _, dim in self.output_splits])
            return
        sizes = _sinusoidal_sizes(output_splits)
        n_sinusoids, n_freq_bins, n_noise_bands = (size if given is None else given for size, given in
                                                   zip(sizes, (n_sinusoids, n_freq_bins, n_noise_bands)))
        self.n_sinusoids = positive_int(f"{owner} `n_sinusoids`", n_sinusoids)
        self.n_freq_bins = positive_int(f"{owner} `n_freq_bins`", n_freq_bins)
        self.n_noise_bands = positive_int(f"{owner} `n_noise_bands`", n_noise_bands)
        self.sample_rate = positive_int(f"{owner} `sample_rate`", sample_rate)
        self.frame_rate = positive_int(f"{owner} `frame_rate`", frame_rate)
        self.fft_size = positive_int(f"{owner} `fft_size`", fft_size)
        self.mel_bins = positive_int(f"{owner} `mel_bins`", mel_bins)
        if self.n_freq_bins < 2:
            raise ValueError(f"{owner} `n_freq_bins` must be at least 2, got {n_freq_bins!r}.")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"{owner} `overlap` must be in [0, 1), got {overlap!r}.")
        if not 0.0 < hz_min < hz_max <= sample_rate / 2:
            raise ValueError(f"{owner} needs 0 < hz_min < hz_max <= sample_rate / 2, got {hz_min!r}, {hz_max!r}.")
        self.overlap, self.hz_min, self.hz_max = float(overlap), float(hz_min), float(hz_max)
        self.amp_bias, self.noise_bias = float(amp_bias), float(noise_bias)
        self.spread_frequencies = bool(spread_frequencies)
        self.resnet = nn.ResNet2D(size)
        self.dense_out = keras.layers.Dense(self.n_sinusoids * (1 + self.n_freq_bins) + self.n_noise_bands)

    def build(self, *args, **kwargs):
        pass  # sub-layers build on their first call

    def n_frames(self, n_samples: int) -> int:
        """Output frames of `n_samples` audio (scaled mode); ValueError unless a whole
        number of hops."""
        n_frames, remainder = divmod(int(n_samples) * self.frame_rate, self.sample_rate)
        if remainder or n_frames < 1 or int(n_samples) % n_frames:
            raise ValueError(f"ResnetSinusoidalEncoder: audio of {n_samples} samples is not a whole number of "
                             f"frames at frame_rate {self.frame_rate} and sample_rate {self.sample_rate}.")
        return n_frames

    def logmel(self, audio) -> tf.Tensor:
        """`[batch, n_mel_frames, bins]` natural-log mel magnitudes (or `spectral_fn`'s)."""
        if self.spectral_fn is not None:
            return self.spectral_fn(audio)
        if not self.scale_outputs:
            return spectral_ops.compute_logmel(audio)
        return spectral_ops.compute_logmel(audio, lo_hz=self.hz_min, hi_hz=self.hz_max, bins=self.mel_bins,
                                           fft_size=self.fft_size, overlap=self.overlap, pad_end=True,
                                           sample_rate=self.sample_rate)

    def features(self, audio) -> tf.Tensor:
        """`[batch, n_mel_frames, freq * channels]`: the ResNet's features of each frame."""
        x = self.resnet(self.logmel(audio)[..., tf.newaxis])  # [b, t, f, c]
        return tf.reshape(x, [-1, x.shape[1], x.shape[2] * x.shape[3]])

    def call(self, inputs, training=None):
        audio = _audio_from(inputs, "ResnetSinusoidalEncoder")
        if not self.scale_outputs:
            x = self.features(audio)
            dense_outs = nn.get_layers(self, self.dense_names)
            return {key: layer(x) for (key, _), layer in zip(self.output_splits, dense_outs)}
        n_frames = self.n_frames(audio.shape[1])
        x = self.dense_out(self.features(audio))
        n_sin = self.n_sinusoids
        amps_logits = x[..., :n_sin]
        freq_logits = tf.reshape(x[..., n_sin:n_sin * (1 + self.n_freq_bins)],
                                 [-1, x.shape[1], n_sin, self.n_freq_bins])
        noise_logits = x[..., n_sin * (1 + self.n_freq_bins):]
        if self.spread_frequencies:
            freq_logits += spread_frequency_logits(n_sin, self.n_freq_bins)
        outputs = {
            "sin_amps": core.exp_sigmoid(amps_logits + self.amp_bias),
            "sin_freqs": core.frequencies_softmax(freq_logits, hz_min=self.hz_min, hz_max=self.hz_max),
            "noise_magnitudes": core.exp_sigmoid(noise_logits + self.noise_bias),
        }
        return {key: core.resample(value, n_frames, method="linear") for key, value in outputs.items()}


def original_f0_scale(logits) -> tf.Tensor:
    """The original's default f0 scaling: `core.frequencies_softmax` of 64 logits per frame
    over log-spaced bins from 20 to 1200 Hz; `[batch, t, 64]` -> `[batch, t, 1]`, Hz."""
    return core.frequencies_softmax(logits, depth=64, hz_min=20.0, hz_max=1200.0)


@register("encoders")
class SinusoidalToHarmonicEncoder(keras.layers.Layer):
    """Sinusoids -> harmonic-synth controls: inputs -> `net` (or the built-in "RnnSandwich"
    FcStack -> Rnn -> FcStack) -> one Dense layer per output (amp_out, hd_out, f0_out, as
    the original) -> (harm_amp, harm_dist, f0_hz).

    Inputs, `[batch, t, n_sinusoids]` each: sin_freqs (Hz) and sin_amps (linear). The
    network reads concat(hz_to_unit(sin_freqs, 0, Nyquist), sin_amps) (the original's), or
    with `scale_inputs` concat(`scale_amplitudes`(sin_amps) (about [0, 1]),
    hz_to_unit(sin_freqs, hz_min, hz_max)). Outputs (dict):
      harm_amp  = amp_scale_fn(logit)                                   [batch, t, 1];
      harm_dist = amp_scale_fn(logits), zeroed at and above Nyquist and normalised to sum
        to 1 (core.normalize_harmonics)                                 [batch, t, n_harmonics];
      f0_hz     = freq_scale_fn(f0_depth logits), Hz; or, with `f0_midi_range` (min, max),
        midi_to_hz(min + (max - min) sigmoid(one logit))                [batch, t, 1].

    Args:
      net: a layer replacing the built-in network (e.g. `nn.RnnSandwich()`; a dict output's
        'out' is used).
      n_harmonics: harmonics of the distribution.
      f0_depth: f0 logits per frame handed to `freq_scale_fn`.
      amp_scale_fn: logits -> amplitudes (e.g. `core.exp_sigmoid`).
      freq_scale_fn: `[batch, t, f0_depth]` logits -> `[batch, t, 1]` Hz.
      sample_rate: Hz (Nyquist for the inputs and harm_dist).
      rnn_channels, rnn_type, ch, layers_per_stack: sizes of the built-in network.
      f0_midi_range: None (use freq_scale_fn) or (min, max) of f0, MIDI (this package's
        models/inverse_synthesis.gin).
      hz_min, hz_max: frequency range of the `scale_inputs` scaling, Hz.
      scale_inputs: this package's input scaling (see above) instead of the original's.

    Call: `encoder({'sin_freqs': ..., 'sin_amps': ...})` or `encoder(sin_freqs, sin_amps)`.
    """

    def __init__(self, net=None, n_harmonics: int = 100, f0_depth: int = 64, amp_scale_fn=core.exp_sigmoid,
                 freq_scale_fn=original_f0_scale, sample_rate: int = 16000, rnn_channels: int = 256,
                 rnn_type: str = "gru", ch: int = 128, layers_per_stack: int = 2, f0_midi_range=None,
                 hz_min: float = 20.0, hz_max: float = 8000.0, scale_inputs: bool = False, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        owner = "SinusoidalToHarmonicEncoder"
        self.n_harmonics = positive_int(f"{owner} `n_harmonics`", n_harmonics)
        self.sample_rate = positive_int(f"{owner} `sample_rate`", sample_rate)
        self.f0_depth = positive_int(f"{owner} `f0_depth`", f0_depth)
        for arg, fn in (("amp_scale_fn", amp_scale_fn), ("freq_scale_fn", freq_scale_fn)):
            if not callable(fn):
                raise TypeError(f"{owner} `{arg}` must be callable, got {type(fn).__name__}.")
        self.amp_scale_fn, self.freq_scale_fn = amp_scale_fn, freq_scale_fn
        self.f0_midi_range = None if f0_midi_range is None else _midi_range(f0_midi_range, "f0_midi_range", owner)
        if not 0.0 < hz_min < hz_max:
            raise ValueError(f"{owner} needs 0 < hz_min < hz_max, got {hz_min!r}, {hz_max!r}.")
        self.hz_min, self.hz_max, self.scale_inputs = float(hz_min), float(hz_max), bool(scale_inputs)
        self.net = net
        if net is None:
            self.in_stack = nn.FcStack(positive_int(f"{owner} `ch`", ch),
                                       positive_int(f"{owner} `layers_per_stack`", layers_per_stack))
            self.rnn = nn.Rnn(positive_int(f"{owner} `rnn_channels`", rnn_channels), rnn_type)
            self.out_stack = nn.FcStack(ch, layers_per_stack)
        self.n_f0 = 1 if self.f0_midi_range is not None else self.f0_depth
        # One Dense layer per output, as the original (its checkpoints' amp_out, hd_out, f0_out).
        self.amp_out = keras.layers.Dense(1)
        self.hd_out = keras.layers.Dense(self.n_harmonics)
        self.f0_out = keras.layers.Dense(self.n_f0)

    def build(self, *args, **kwargs):
        pass  # sub-layers build on their first call

    def call(self, *inputs, training=None):
        sin_freqs, sin_amps = frame_inputs(self, inputs, ("sin_freqs", "sin_amps"))
        if self.scale_inputs:
            x = tf.concat([scale_amplitudes(sin_amps),
                           core.hz_to_unit(sin_freqs, hz_min=self.hz_min, hz_max=self.hz_max)], axis=-1)
        else:
            x = tf.concat([core.hz_to_unit(sin_freqs, hz_min=0.0, hz_max=self.sample_rate / 2.0), sin_amps], axis=-1)
        if self.net is not None:
            x = self.net(x, training=training)
            x = x["out"] if isinstance(x, dict) else x
        else:
            x = self.in_stack(x)
            x = self.out_stack(tf.concat([x, self.rnn(x, training=training)], axis=-1))
        f0_logits = self.f0_out(x)
        if self.f0_midi_range is not None:
            midi_min, midi_max = self.f0_midi_range
            f0_hz = core.midi_to_hz(midi_min + (midi_max - midi_min) * tf.sigmoid(f0_logits))
        else:
            f0_hz = self.freq_scale_fn(f0_logits)
        harm_dist = core.normalize_harmonics(self.amp_scale_fn(self.hd_out(x)), f0_hz, self.sample_rate)
        return {"harm_amp": self.amp_scale_fn(self.amp_out(x)), "harm_dist": harm_dist, "f0_hz": f0_hz}
