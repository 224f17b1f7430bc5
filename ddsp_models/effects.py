"""Effects: Processors that transform audio (reverbs, FIR filtering, modulated delay).

Audio is float32 `[batch, n_samples]`; controls are `[batch, n_frames, channels]`. With
`trainable=True` a reverb learns its impulse response (variables created in `build()`, shared
across the batch, saved by tf.train.Checkpoint); otherwise the IR comes from the inputs.
"""
import keras
import tensorflow as tf

from ddsp_models import core, seeding
from ddsp_models.gin_utils import register
from ddsp_models.processors import Processor, TensorDict, check_audio, check_divides, check_frames, check_same_size
from ddsp_models.synths import FilteredNoise


def _check_ir(ir, name: str = "ir") -> tf.Tensor:
    """Impulse response `[batch, ir_size]` from `[ir_size]`, `[batch, ir_size]` or
    `[batch, ir_size, 1]`."""
    ir = core.tf_float32(ir, name)
    if ir.shape.rank == 3 and ir.shape[-1] == 1:
        ir = ir[..., 0]
    core.ensure_rank(ir, (1, 2), name)
    if ir.shape.rank == 1:
        ir = ir[tf.newaxis, :]
    if ir.shape[1] is not None and ir.shape[1] < 2:
        raise ValueError(f"`{name}` needs at least 2 samples (the first one is zeroed), got "
                         f"shape {ir.shape.as_list()}.")
    return ir


def _match_batch(audio: tf.Tensor, ir: tf.Tensor) -> tf.Tensor:
    """A learned IR `[1, ir_size]` repeated for each example of audio: `[batch, ir_size]`."""
    return tf.tile(ir, [tf.shape(audio)[0], 1])


@register("effects")
class Reverb(Processor):
    """Convolution reverb: audio + audio * ir (causal, no delay compensation).

    The IR's first sample (time 0) is zeroed so that the wet path never contains the direct
    sound: with add_dry, the dry signal is exactly the input plus a separate reverb tail.

    Args:
      trainable: learn one IR of `reverb_length` samples (shared across the batch) instead of
        taking `ir` as an input.
      reverb_length: length of the learned IR, samples.
      add_dry: add the input (dry) signal to the reverberated (wet) one.
      name: processor name.
    """

    def __init__(self, trainable: bool = False, reverb_length: int = 48000, add_dry: bool = True,
                 name: str = "reverb", **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        self.learn_ir = bool(trainable)  # fixed at construction; freezing later keeps the variable
        self.reverb_length = int(reverb_length)
        self.add_dry = add_dry

    def build(self, input_shapes=None):
        if self.learn_ir:
            self.ir = self.add_weight(
                name="ir", shape=[self.reverb_length], dtype="float32", trainable=True,
                initializer=keras.initializers.RandomNormal(mean=0.0, stddev=1e-6))

    def get_controls(self, audio, ir=None) -> TensorDict:
        """Args: audio `[batch, n_samples]`; ir `[batch or 1, ir_size]` (ignored when trainable).

        Returns {'audio', 'ir'}; a learned IR is repeated for every example.
        """
        audio = check_audio(audio)
        if self.learn_ir:
            ir = _match_batch(audio, tf.convert_to_tensor(self.ir)[tf.newaxis, :])
        elif ir is None:
            raise ValueError(f"{type(self).__name__} '{self.name}' has trainable=False, so it needs "
                             "the `ir` input (`[batch, ir_size]`).")
        ir = _check_ir(ir)
        check_same_size({"audio": audio, "ir": ir}, axis=0, what=f"batch sizes in {self.name}")
        return {"audio": audio, "ir": ir}

    def get_signal(self, audio, ir) -> tf.Tensor:
        """Reverberated audio `[batch, n_samples]`."""
        audio = check_audio(audio)
        ir = _check_ir(ir)
        check_same_size({"audio": audio, "ir": ir}, axis=0, what=f"batch sizes in {self.name}")
        wet_ir = tf.concat([tf.zeros_like(ir[:, :1]), ir[:, 1:]], axis=1)  # wet path only
        wet = core.fft_convolve(audio, wet_ir, padding="same", delay_compensation=0)
        return wet + audio if self.add_dry else wet


@register("effects")
class ExpDecayReverb(Reverb):
    """Reverb whose IR is noise under an exponential decay: gain * exp(-(2 + e^decay) t) * n(t).

    t runs from 0 to 1 over the IR, n(t) is uniform noise in [-1, 1].

    Args:
      trainable: learn gain and decay (initial values 2.0 and 4.0, pre-scaling).
      reverb_length: IR length, samples.
      scale_fn: squashing of gain (None: use as given).
      add_dry: add the input signal.
      name: processor name.
    """

    def __init__(self, trainable: bool = False, reverb_length: int = 48000, scale_fn=core.exp_sigmoid,
                 add_dry: bool = True, name: str = "exp_decay_reverb", **kwargs):
        super().__init__(trainable=trainable, reverb_length=reverb_length, add_dry=add_dry, name=name,
                         **kwargs)
        self.scale_fn = scale_fn

    def build(self, input_shapes=None):
        if self.learn_ir:
            self.gain = self.add_weight(name="gain", shape=[1], dtype="float32", trainable=True,
                                        initializer=keras.initializers.Constant(2.0))
            self.decay = self.add_weight(name="decay", shape=[1], dtype="float32", trainable=True,
                                         initializer=keras.initializers.Constant(4.0))

    def get_controls(self, audio, gain=None, decay=None) -> TensorDict:
        """Args: audio `[batch, n_samples]`; gain, decay `[batch, 1]` (ignored when trainable)."""
        audio = check_audio(audio)
        if self.learn_ir:
            gain = tf.convert_to_tensor(self.gain)[tf.newaxis, :]
            decay = tf.convert_to_tensor(self.decay)[tf.newaxis, :]
        elif gain is None or decay is None:
            raise ValueError(f"ExpDecayReverb '{self.name}' has trainable=False, so it needs the "
                             "`gain` and `decay` inputs (`[batch, 1]`).")
        gain = self._check_scalar_per_example(gain, "gain")
        decay = self._check_scalar_per_example(decay, "decay")
        ir = self.impulse_response(gain, decay)
        return {"audio": audio, "ir": _match_batch(audio, ir) if self.learn_ir else ir}

    def impulse_response(self, gain, decay) -> tf.Tensor:
        """IR `[batch, reverb_length]` from gain and decay `[batch, 1]` (pre-scaling)."""
        if self.scale_fn is not None:
            gain = self.scale_fn(gain)
        decay_exponent = 2.0 + tf.exp(decay)
        time = tf.linspace(0.0, 1.0, self.reverb_length)[tf.newaxis, :]
        noise = seeding.uniform([1, self.reverb_length], minval=-1.0, maxval=1.0)
        return gain * tf.exp(-decay_exponent * time) * noise

    @staticmethod
    def _check_scalar_per_example(x, name: str) -> tf.Tensor:
        x = core.tf_float32(x, name)
        core.ensure_rank(x, (1, 2, 3), name)
        x = tf.reshape(x, [-1, 1]) if x.shape.rank == 1 else tf.reshape(x, [tf.shape(x)[0], -1])
        if x.shape[-1] is not None and x.shape[-1] != 1:
            raise ValueError(f"`{name}` must hold one value per example (`[batch, 1]`), got "
                             f"{x.shape.as_list()} values per example.")
        return x


@register("effects")
class FilteredNoiseReverb(Reverb):
    """Reverb whose IR is filtered noise with time-varying frequency bands (a FilteredNoise).

    Args:
      trainable: learn the band magnitudes `[n_frames, n_filter_banks]` (pre-scaling).
      reverb_length: IR length, samples (a multiple of n_frames).
      window_size: FIR length of the noise filters, samples.
      n_frames: number of magnitude frames over the IR.
      n_filter_banks: frequency bands from 0 Hz to Nyquist.
      scale_fn: squashing of magnitudes (None: use as given).
      initial_bias: added to the magnitudes before scale_fn.
      add_dry: add the input signal.
      name: processor name.
      initial_stddev: standard deviation of the learned magnitudes' random initial values
        (not an argument of the original, which uses 0.01).
    """

    def __init__(self, trainable: bool = False, reverb_length: int = 48000, window_size: int = 257,
                 n_frames: int = 1000, n_filter_banks: int = 16, scale_fn=core.exp_sigmoid,
                 initial_bias: float = -3.0, add_dry: bool = True, name: str = "filtered_noise_reverb",
                 initial_stddev: float = 1e-2, **kwargs):
        super().__init__(trainable=trainable, reverb_length=reverb_length, add_dry=add_dry, name=name,
                         **kwargs)
        check_divides(reverb_length, n_frames, "n_frames", "FilteredNoiseReverb reverb_length")
        self.n_frames = int(n_frames)
        self.n_filter_banks = int(n_filter_banks)
        self.initial_stddev = float(initial_stddev)
        self.noise_synth = FilteredNoise(n_samples=reverb_length, window_size=window_size,
                                         scale_fn=scale_fn, initial_bias=initial_bias,
                                         name=f"{name}_noise")

    def build(self, input_shapes=None):
        if self.learn_ir:
            self.magnitudes = self.add_weight(
                name="magnitudes", shape=[self.n_frames, self.n_filter_banks], dtype="float32",
                trainable=True, initializer=keras.initializers.RandomNormal(mean=0.0, stddev=self.initial_stddev))

    def get_controls(self, audio, magnitudes=None) -> TensorDict:
        """Args: audio `[batch, n_samples]`; magnitudes `[batch, n_frames, n_filter_banks]`
        (pre-scaling; ignored when trainable)."""
        audio = check_audio(audio)
        if self.learn_ir:
            magnitudes = tf.convert_to_tensor(self.magnitudes)[tf.newaxis, :, :]
        elif magnitudes is None:
            raise ValueError(f"FilteredNoiseReverb '{self.name}' has trainable=False, so it needs the "
                             "`magnitudes` input (`[batch, n_frames, n_filter_banks]`).")
        ir = self.noise_synth(magnitudes)
        return {"audio": audio, "ir": _match_batch(audio, ir) if self.learn_ir else ir}


@register("effects")
class FIRFilter(Processor):
    """Time-varying linear-phase FIR filter designed from magnitude responses.

    Args:
      window_size: FIR length, samples (see core.frequency_impulse_response).
      scale_fn: squashing of magnitudes (None: use as given).
      name: processor name.
      trainable: keyword only, for configs that pass it (the filter has no variables).
    """

    def __init__(self, window_size: int = 257, scale_fn=core.exp_sigmoid, name: str = "fir_filter", *,
                 trainable: bool = False, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        self.window_size = int(window_size)
        self.scale_fn = scale_fn

    def get_controls(self, audio, magnitudes) -> TensorDict:
        """Args: audio `[batch, n_samples]`; magnitudes `[batch, n_frames, n_bands]` (pre-scaling)
        on a uniform grid from 0 Hz to Nyquist."""
        audio, magnitudes = self._check(audio, magnitudes)
        if self.scale_fn is not None:
            magnitudes = self.scale_fn(magnitudes)
        return {"audio": audio, "magnitudes": magnitudes}

    def get_signal(self, audio, magnitudes) -> tf.Tensor:
        """Filtered audio `[batch, n_samples]` (delay compensated as core.fft_convolve)."""
        audio, magnitudes = self._check(audio, magnitudes)
        return core.frequency_filter(audio, magnitudes, window_size=self.window_size)

    @staticmethod
    def _check(audio, magnitudes):
        audio = check_audio(audio)
        magnitudes = check_frames(magnitudes, "magnitudes", ranks=(3,))
        check_same_size({"audio": audio, "magnitudes": magnitudes}, axis=0, what="batch sizes in FIRFilter")
        if audio.shape[1] is not None:
            check_divides(audio.shape[1], magnitudes.shape[1], "magnitudes", "FIRFilter (audio length)")
        return audio, magnitudes


@register("effects")
class ModDelay(Processor):
    """Modulated delay (chorus / flanger / vibrato): audio + gain * audio(t - delay(t)).

    The delay is center_ms + depth_ms * phase: it sweeps [center_ms, center_ms + depth_ms]
    as phase goes from 0 to 1; it is read with core.variable_length_delay (linear
    interpolation) with a maximum of (center_ms + depth_ms) * sample_rate / 1000 samples.

    Args:
      center_ms: shortest delay, ms.
      depth_ms: modulation depth, ms.
      sample_rate: Hz.
      gain_scale_fn: squashing of gain (None: use as given).
      phase_scale_fn: squashing of phase into [0, 1] (None: use as given).
      add_dry: add the input signal.
      name: processor name.
    """

    def __init__(self, center_ms: float = 15.0, depth_ms: float = 10.0, sample_rate: int = 16000,
                 gain_scale_fn=core.exp_sigmoid, phase_scale_fn=tf.nn.sigmoid, add_dry: bool = True,
                 name: str = "mod_delay", **kwargs):
        super().__init__(name=name, **kwargs)
        if depth_ms < 0 or center_ms < 0 or center_ms + depth_ms <= 0:
            raise ValueError(f"ModDelay needs center_ms ({center_ms}) >= 0, depth_ms ({depth_ms}) >= 0 and a "
                             "positive sum.")
        self.center_ms = float(center_ms)
        self.depth_ms = float(depth_ms)
        self.sample_rate = int(sample_rate)
        self.gain_scale_fn = gain_scale_fn
        self.phase_scale_fn = phase_scale_fn
        self.add_dry = add_dry

    def get_controls(self, audio, gain, phase) -> TensorDict:
        """Args: audio `[batch, n_samples]`; gain and phase `[batch, n_frames, 1]` (pre-scaling),
        frame or sample rate."""
        audio = check_audio(audio)
        gain = check_frames(gain, "gain", channels=1)
        phase = check_frames(phase, "phase", channels=1)
        if self.gain_scale_fn is not None:
            gain = self.gain_scale_fn(gain)
        if self.phase_scale_fn is not None:
            phase = self.phase_scale_fn(phase)
        return {"audio": audio, "gain": gain, "phase": phase}

    def get_signal(self, audio, gain, phase) -> tf.Tensor:
        """Audio `[batch, n_samples]`; gain and phase at frame or sample rate (frame rate is
        upsampled linearly), phase in [0, 1]."""
        audio = check_audio(audio)
        n_samples = audio.shape[1]
        if n_samples is None:
            raise ValueError("ModDelay needs a static number of samples in `audio`.")
        gain = self._to_audio_rate(check_frames(gain, "gain", channels=1), n_samples)
        phase = self._to_audio_rate(check_frames(phase, "phase", channels=1), n_samples)
        check_same_size({"audio": audio, "gain": gain, "phase": phase}, axis=0,
                        what="batch sizes in ModDelay")
        max_delay_ms = self.center_ms + self.depth_ms
        max_length = int(self.sample_rate / 1000.0 * max_delay_ms)
        phase = phase * (self.depth_ms / max_delay_ms) + self.center_ms / max_delay_ms
        wet = core.variable_length_delay(phase, audio, max_length=max_length)
        wet = wet * gain[..., 0]
        return wet + audio if self.add_dry else wet

    @staticmethod
    def _to_audio_rate(x: tf.Tensor, n_samples: int) -> tf.Tensor:
        return x if x.shape[1] == n_samples else core.resample(x, n_samples, method="linear")
