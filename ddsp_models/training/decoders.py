"""Decoders: scaled features (`[batch, time, 1]` f0_scaled, ld_scaled, z ...) -> synthesizer
controls, a dict `{key: [batch, time, size]}` per `output_splits` (raw network outputs; the
synthesizers apply their own scaling, e.g. exp_sigmoid).

Called with the features dict (the `input_keys` are read from it) or positionally with the
inputs in `input_keys` order.
"""
import logging

import tensorflow as tf

from ddsp_models import core
from ddsp_models.checks import positive_float
from ddsp_models.gin_utils import register
from ddsp_models.training import nn
from ddsp_models.training.features import MAX_VELOCITY


@register("decoders")
class RnnFcDecoder(nn.OutputSplitsLayer):
    """FcStack per input -> concatenate -> Rnn -> concatenate with the stacks' outputs ->
    FcStack -> Dense -> split.

    Args:
      rnn_channels: GRU/LSTM units.
      rnn_type: 'gru' or 'lstm'.
      ch: width of every FcStack.
      layers_per_stack: Fc layers per stack.
      stateless: the RNN state is an input and an output (``'state'``, `[batch,
        rnn_channels]`, last in both; zeros to start): for streaming exports
        (`nn.StatelessRnn`). Same weights as the stateful decoder.
      input_keys: features to decode from, each `[batch, time, channels]`.
      output_splits: (key, size) pairs of the outputs.
    """

    def __init__(self, rnn_channels: int = 512, rnn_type: str = "gru", ch: int = 512, layers_per_stack: int = 3,
                 stateless: bool = False, input_keys=("ld_scaled", "f0_scaled", "z"),
                 output_splits=(("amps", 1), ("harmonic_distribution", 40)), name=None, **kwargs):
        self.stateless = bool(stateless)
        keys = nn.as_key_list(input_keys, "input_keys")
        super().__init__(input_keys=keys + (["state"] if self.stateless else []),
                         output_splits=output_splits, name=name, **kwargs)
        self._input_stack_names = nn.set_layers(
            self, "input_stack", [nn.FcStack(ch, layers_per_stack) for _ in keys])
        self.rnn = (nn.StatelessRnn(rnn_channels, rnn_type) if self.stateless
                    else nn.Rnn(rnn_channels, rnn_type))
        self.out_stack = nn.FcStack(ch, layers_per_stack)

    def call(self, *inputs, training=None):
        if not self.stateless:
            return super().call(*inputs, training=training)
        inputs = self._inputs_from(inputs)
        state = inputs[-1]
        features = [core.ensure_3d(x, f"input {i}") for i, x in enumerate(inputs[:-1])]
        if len(features) != len(self.input_stacks):
            raise ValueError(f"{self.name}: expected {len(self.input_stacks)} inputs and the "
                             f"state, got {len(inputs)} tensors")
        stacked = [stack(x) for stack, x in zip(self.input_stacks, features)]
        x, new_state = self.rnn(tf.concat(stacked, axis=-1), state)
        x = self.out_stack(tf.concat(stacked + [x], axis=-1))
        outputs = nn.split_to_dict(self.dense_out(x), self.output_splits)
        outputs["state"] = new_state
        return outputs

    @property
    def input_stacks(self):
        return nn.get_layers(self, self._input_stack_names)

    def compute_output(self, *inputs, training=None):
        if len(inputs) != len(self.input_keys):
            raise ValueError(f"{self.name}: expected {len(self.input_keys)} inputs {self.input_keys}, "
                             f"got {len(inputs)}.")
        stacked = [stack(x) for stack, x in zip(self.input_stacks, inputs)]
        x = self.rnn(tf.concat(stacked, axis=-1), training=training)
        return self.out_stack(tf.concat(stacked + [x], axis=-1))


@register("decoders")
class DilatedConvDecoder(nn.OutputSplitsLayer):
    """Concatenated inputs -> `nn.DilatedConvStack` -> Dense -> split.

    With `conditioning_keys`, those features (concatenated, optionally through
    `precondition_stack`) condition every conv layer (FiLM) instead of being convolved.
    With resample_stride > 1 the stack upsamples time (transposed convolutions) by
    resample_stride per `stacks_per_resample` stacks.

    Args:
      ch, kernel_size, layers_per_stack, stacks, dilation, norm_type, resample_stride,
      stacks_per_resample, resample_after_convolve, spectral_norm, ortho_init: see
      `nn.DilatedConvStack`.
      input_keys: features convolved.
      output_splits: (key, size) pairs of the outputs.
      conditioning_keys: features used as conditioning (None: no conditioning).
      precondition_stack: optional layer applied to the conditioning first.
    """

    def __init__(self, ch: int = 256, kernel_size: int = 3, layers_per_stack: int = 5, stacks: int = 2,
                 dilation: int = 2, norm_type="layer", resample_stride: int = 1, stacks_per_resample: int = 1,
                 resample_after_convolve: bool = True, input_keys=("ld_scaled", "f0_scaled"),
                 output_splits=(("amps", 1), ("harmonic_distribution", 60)), conditioning_keys=("z",),
                 precondition_stack=None, spectral_norm: bool = False, ortho_init: bool = False, name=None,
                 **kwargs):
        conditioning_keys = nn.as_key_list(conditioning_keys, "conditioning_keys") or []
        all_keys = nn.as_key_list(input_keys, "input_keys") + conditioning_keys
        super().__init__(input_keys=all_keys, output_splits=output_splits, name=name, **kwargs)
        self.conditioning_keys = conditioning_keys or None
        self.n_conditioning = len(conditioning_keys)
        self.conditional = self.n_conditioning > 0
        if precondition_stack is not None and not self.conditional:
            logging.warning("DilatedConvDecoder: precondition_stack is ignored without conditioning_keys.")
        self.precondition_stack = precondition_stack if self.conditional else None
        self.dilated_conv_stack = nn.DilatedConvStack(
            ch=ch, layers_per_stack=layers_per_stack, stacks=stacks, kernel_size=kernel_size, dilation=dilation,
            norm_type=norm_type, resample_type="upsample" if resample_stride > 1 else None,
            resample_stride=resample_stride, stacks_per_resample=stacks_per_resample,
            resample_after_convolve=resample_after_convolve, conditional=self.conditional,
            spectral_norm=spectral_norm, ortho_init=ortho_init)

    def compute_output(self, *inputs, training=None):
        if len(inputs) != len(self.input_keys):
            raise ValueError(f"{self.name}: expected {len(self.input_keys)} inputs {self.input_keys}, "
                             f"got {len(inputs)}.")
        n_inputs = len(inputs) - self.n_conditioning
        x = tf.concat(inputs[:n_inputs], axis=-1)
        if not self.conditional:
            return self.dilated_conv_stack(x, training=training)
        conditioning = tf.concat(inputs[n_inputs:], axis=-1)
        if self.precondition_stack is not None:
            conditioning = self.precondition_stack(conditioning)
        return self.dilated_conv_stack((x, conditioning), training=training)


@register("decoders")
class MidiToHarmonicDecoder(nn.OutputSplitsLayer):
    """MIDI (pitch, velocity, optional z) -> synthesizer controls and f0.

    Built-in network (`net=None`): pitch (MIDI) and velocity (0-127) scaled by 1/127, with z
    (`[batch, time, n]`; a single frame `[batch, 1, n]` is tiled over time), go through
    FcStack -> Rnn -> FcStack -> Dense -> splits. With a `net` (the original DDSP's form,
    e.g. an `nn.DilatedConvStack`): pitch (MIDI, unscaled) -> net (`net([pitch, z])` when
    there is a z) -> layer norm (`norm`) -> Dense -> splits; velocity is not used.

    The output dict holds `output_splits` (raw, pre-scale_fn) plus
      f0_midi = pitch + f0 channel (MIDI, `[batch, time, 1]`; `f0_residual`, unbounded as the
        original), or pitch + f0_residual_range * tanh(f0 channel) with a range, or the f0
        channel alone without `f0_residual`;
      f0_hz = midi_to_hz(f0_midi) (0 Hz where f0_midi == 0 with `midi_zero_silence`).
    The f0 channel is the split named 'f0_midi' when `output_splits` has one (the original's
    configs), else one more channel after the splits.

    A bounded residual saturates when any loss pushes it past the bound (tanh' -> 0, and no
    loss can pull it back), so it is off by default.

    Args:
      net: a layer replacing the built-in network (see above).
      f0_residual: f0_midi is the pitch plus the f0 channel (else the f0 channel itself).
      norm: layer-normalise `net`'s output (only with a `net`).
      output_splits: (key, size) pairs of the controls (may include ('f0_midi', 1)); the
        default is the original's (the original's control names are accepted downstream).
      midi_zero_silence: f0_hz = 0 where f0_midi == 0 (the original's `core.midi_to_hz`).
      rnn_channels, rnn_type, ch, layers_per_stack: sizes of the built-in network.
      f0_residual_range: None (default): unbounded residual; else the largest deviation of f0
        from the note's pitch, semitones (> 0).
      input_keys: ('pitch', 'velocity'[, 'z']); with a `net`, a 'z' in the features is always
        decoded (as the original decodes any z it is given).
    """

    def __init__(self, net=None, f0_residual: bool = True, norm: bool = True,
                 output_splits=(("f0_midi", 1), ("amplitudes", 1), ("harmonic_distribution", 60),
                                ("magnitudes", 65)),
                 midi_zero_silence: bool = True, rnn_channels: int = 256, rnn_type: str = "gru", ch: int = 256,
                 layers_per_stack: int = 2, f0_residual_range: float | None = None,
                 input_keys=("pitch", "velocity"), name=None, **kwargs):
        splits = nn.check_splits(output_splits, "output_splits")
        if any(key in ("f0_residual", "f0_hz") for key, _ in splits):
            raise ValueError("MidiToHarmonicDecoder `output_splits` may not use the reserved keys "
                             "'f0_residual', 'f0_hz'.")
        if dict(splits).get("f0_midi", 1) != 1:
            raise ValueError(f"MidiToHarmonicDecoder: the 'f0_midi' split must have size 1, got {splits}.")
        if "f0_midi" not in dict(splits):
            splits = splits + [("f0_midi", 1)]
        super().__init__(input_keys=input_keys, output_splits=splits, name=name, **kwargs)
        if len(self.input_keys) < 2:
            raise ValueError(f"MidiToHarmonicDecoder `input_keys` must start with (pitch, velocity), got "
                             f"{self.input_keys}.")
        self.f0_residual_range = None if f0_residual_range is None else positive_float(
            "MidiToHarmonicDecoder `f0_residual_range` (semitones; None: unbounded)", f0_residual_range)
        self.f0_residual, self.midi_zero_silence = bool(f0_residual), bool(midi_zero_silence)
        self.net = net
        if net is None:
            self.in_stack = nn.FcStack(ch, layers_per_stack)
            self.rnn = nn.Rnn(rnn_channels, rnn_type)
            self.out_stack = nn.FcStack(ch, layers_per_stack)
            self.norm = None
        else:
            self.norm = nn.Normalize("layer") if norm else None

    def call(self, *inputs, training=None):
        if (self.net is not None and len(inputs) == 1 and isinstance(inputs[0], dict) and "z" in inputs[0]
                and "z" not in self.input_keys):  # the original's form always decodes a z it is given
            inputs = tuple(nn.get_features(inputs[0], list(self.input_keys) + ["z"], self.name))
        inputs = [core.ensure_3d(x, f"input {i}") for i, x in enumerate(self._inputs_from(inputs))]
        time_steps = inputs[0].shape[1]
        inputs = [x if x.shape[1] == time_steps else tf.tile(x[:, :1], [1, time_steps, 1]) for x in inputs]
        outputs = super().call(*inputs, training=training)
        f0 = outputs.pop("f0_midi")
        if self.f0_residual_range is not None:
            f0 = self.f0_residual_range * tf.tanh(f0)
        f0_midi = inputs[0] + f0 if self.f0_residual else f0
        outputs.update(f0_midi=f0_midi, f0_hz=core.midi_to_hz(f0_midi, midi_zero_silence=self.midi_zero_silence))
        return outputs

    def compute_output(self, pitch, velocity, *z, training=None):
        if self.net is not None:
            x = self.net(pitch, training=training) if not z else self.net(
                [pitch, tf.concat(list(z), axis=-1)], training=training)
            return self.norm(x) if self.norm is not None else x
        x = tf.concat([pitch / core.MIDI_MAX, velocity / MAX_VELOCITY] + list(z), axis=-1)
        x = self.in_stack(x)
        return self.out_stack(tf.concat([x, self.rnn(x, training=training)], axis=-1))


# The original DDSP's MIDI decoder (its signature and behaviour).
from ddsp_models.training.codecs_original import MidiDecoder  # noqa: E402,F401
