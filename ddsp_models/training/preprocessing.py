"""Preprocessors: raw frame features -> network inputs scaled to about [0, 1].

  f0_scaled = hz_to_midi(f0_hz) / 127          (440 Hz -> 69 / 127, 0 Hz -> 0)
  ld_scaled = loudness_db / DB_RANGE + 1        (-80 dB -> 0, 0 dB -> 1; DB_RANGE = 80)

The inverse functions (`inv_scale_f0_hz`, `inv_scale_db`, `invert_scaling`) turn network-side
values back into Hz and dB (used e.g. when shifting pitch or loudness for timbre transfer).
Features are resampled (linearly, end points aligned) to `time_steps` frames and returned as
`[batch, time_steps, 1]`.
"""
import keras
import tensorflow as tf

from ddsp_models import core, spectral_ops
from ddsp_models.checks import positive_int
from ddsp_models.gin_utils import register
from ddsp_models.training.nn import get_features

F0_RANGE = core.MIDI_MAX  # MIDI notes; f0_scaled = midi / F0_RANGE
DB_RANGE = core.DB_RANGE  # dB; ld_scaled = db / DB_RANGE + 1


def at_least_3d(x):
    """A scalar, `[time]` or `[batch, time]` tensor as `[batch, time, channels]`: adds a time,
    then a batch axis in front, then a channel axis at the end, as far as needed."""
    x = tf.convert_to_tensor(x)
    if x.shape.rank == 0:
        x = x[tf.newaxis]
    if x.shape.rank == 1:
        x = x[tf.newaxis, :]
    if x.shape.rank == 2:
        x = x[:, :, tf.newaxis]
    return x


# ------------------------------------------------------------------------------ scaling
def scale_db(db):
    """dB -> [0, 1] for dB in [-DB_RANGE, 0]: db / DB_RANGE + 1."""
    return core.tf_float32(db, "db") / core.DB_RANGE + 1.0


def inv_scale_db(db_scaled):
    """Inverse of `scale_db`: (db_scaled - 1) * DB_RANGE, in dB."""
    return (core.tf_float32(db_scaled, "db_scaled") - 1.0) * core.DB_RANGE


def scale_f0_hz(f0_hz):
    """Hz -> MIDI / 127 (0 Hz -> 0)."""
    return core.hz_to_midi(f0_hz) / F0_RANGE


def inv_scale_f0_hz(f0_scaled):
    """Inverse of `scale_f0_hz`: midi_to_hz(f0_scaled * 127), in Hz."""
    return core.midi_to_hz(core.tf_float32(f0_scaled, "f0_scaled") * F0_RANGE)


def invert_scaling(features: dict) -> dict:
    """Hz / dB features from scaled ones: a copy of `features` where each of 'f0_scaled',
    'ld_scaled', 'pw_scaled' present adds 'f0_hz', 'loudness_db', 'pw_db' respectively."""
    features = dict(features)
    for scaled, raw, inverse in (("f0_scaled", "f0_hz", inv_scale_f0_hz), ("ld_scaled", "loudness_db", inv_scale_db),
                                 ("pw_scaled", "pw_db", inv_scale_db)):
        if scaled in features:
            features[raw] = inverse(features[scaled])
    return features


# ------------------------------------------------------------------------ preprocessors
class _FramePreprocessor(keras.layers.Layer):
    """Shared parts: dict / positional inputs, resampling to `time_steps`."""

    def __init__(self, time_steps: int = 1000, frame_rate: int = 250, sample_rate: int = 16000, name=None,
                 **kwargs):
        kwargs.setdefault("dtype", "float32")  # f0 in Hz is never rounded to bf16 (precision.py)
        super().__init__(name=name, **kwargs)
        positive_int(f"{type(self).__name__} `time_steps`", time_steps)
        self.time_steps, self.frame_rate, self.sample_rate = time_steps, frame_rate, sample_rate

    def build(self, *args, **kwargs):
        pass  # no weights

    def resample(self, x, name: str):
        """`[batch, n_frames(, 1)]` -> `[batch, time_steps, 1]`."""
        x = core.ensure_3d(x, name)
        if x.shape[1] is None:
            raise ValueError(f"{type(self).__name__}: `{name}` needs a static number of frames, got {x.shape}.")
        return x if x.shape[1] == self.time_steps else core.resample(x, self.time_steps)

    def _features(self, inputs, positional_keys):
        """A dict of features from one dict or positional tensors named `positional_keys`."""
        if len(inputs) == 1 and isinstance(inputs[0], dict):
            return inputs[0]
        if len(inputs) > len(positional_keys):
            raise ValueError(f"{type(self).__name__} takes a features dict or up to {len(positional_keys)} "
                             f"tensors {positional_keys}, got {len(inputs)}.")
        return {key: value for key, value in zip(positional_keys, inputs) if value is not None}


@register("preprocessing")
class F0LoudnessPreprocessor(_FramePreprocessor):
    """f0 and loudness -> `f0_hz`, `loudness_db`, `f0_scaled`, `ld_scaled`, each `[batch, time_steps, 1]`.

    Call with a features dict (keys 'f0_hz', 'loudness_db', and 'audio' when loudness is
    computed) or positionally as (loudness_db, f0_hz, audio=None). Returns a dict of the four
    features only (merge it into the features).

    Args:
      time_steps: output frames.
      frame_rate: frame rate (Hz) of the loudness computed from audio.
      sample_rate: sample rate (Hz) of the audio.
      compute_loudness: compute loudness from 'audio' with `spectral_ops.compute_loudness`
        (the original's default, True; its 'center' frames, n_samples // hop + 1, are
        resampled to time_steps, as the original). Without 'audio' (e.g. synthesis from
        given controls) 'loudness_db' is used, where the original fails; with
        compute_loudness=False loudness is computed only when 'loudness_db' is missing.
    """

    def __init__(self, time_steps: int = 1000, frame_rate: int = 250, sample_rate: int = 16000,
                 compute_loudness: bool = True, name=None, **kwargs):
        super().__init__(time_steps, frame_rate, sample_rate, name=name, **kwargs)
        self.compute_loudness = compute_loudness

    def call(self, *inputs, training=None):
        features = self._features(inputs, ("loudness_db", "f0_hz", "audio"))
        owner = type(self).__name__
        (f0_hz,) = get_features(features, ["f0_hz"], owner)
        if "loudness_db" not in features or (self.compute_loudness and "audio" in features):
            (audio,) = get_features(features, ["audio"], owner + " (to compute 'loudness_db')")
            loudness_db = spectral_ops.compute_loudness(audio, sample_rate=self.sample_rate,
                                                        frame_rate=self.frame_rate)
        else:
            loudness_db = features["loudness_db"]
        f0_hz = self.resample(f0_hz, "f0_hz")
        loudness_db = self.resample(loudness_db, "loudness_db")
        return {"f0_hz": f0_hz, "loudness_db": loudness_db,
                "f0_scaled": scale_f0_hz(f0_hz), "ld_scaled": scale_db(loudness_db)}

    @staticmethod
    def invert_scaling(f0_scaled, ld_scaled):
        """(f0_hz, loudness_db) from (f0_scaled, ld_scaled)."""
        return inv_scale_f0_hz(f0_scaled), inv_scale_db(ld_scaled)


@register("preprocessing")
class F0PowerPreprocessor(_FramePreprocessor):
    """f0 and frame power -> `f0_hz`, `pw_db`, `f0_scaled`, `pw_scaled`, each `[batch, time_steps, 1]`.

    Power comes from 'power_db' (or 'pw_db'), or from 'audio' with `spectral_ops.compute_power`
    when `compute_power` is set or neither key is present. pw_scaled = pw_db / 80 + 1.
    Positional call: (f0_hz, power_db=None, audio=None).

    Args:
      frame_size: samples per power frame when computing it from audio (the original's 64).
    """

    def __init__(self, time_steps: int = 1000, frame_rate: int = 250, sample_rate: int = 16000,
                 frame_size: int = 64, compute_power: bool = False, name=None, **kwargs):
        super().__init__(time_steps, frame_rate, sample_rate, name=name, **kwargs)
        self.frame_size, self.compute_power = frame_size, compute_power

    def call(self, *inputs, training=None):
        features = self._features(inputs, ("f0_hz", "power_db", "audio"))
        owner = type(self).__name__
        (f0_hz,) = get_features(features, ["f0_hz"], owner)
        power_key = next((key for key in ("power_db", "pw_db") if key in features), None)
        if self.compute_power or power_key is None:
            (audio,) = get_features(features, ["audio"], owner + " (to compute 'power_db')")
            power_db = spectral_ops.compute_power(audio, sample_rate=self.sample_rate, frame_rate=self.frame_rate,
                                                  frame_size=self.frame_size)
        else:
            power_db = features[power_key]
        f0_hz = self.resample(f0_hz, "f0_hz")
        power_db = self.resample(power_db, "power_db")
        return {"f0_hz": f0_hz, "pw_db": power_db, "f0_scaled": scale_f0_hz(f0_hz), "pw_scaled": scale_db(power_db)}

    @staticmethod
    def invert_scaling(f0_scaled, pw_scaled):
        """(f0_hz, pw_db) from (f0_scaled, pw_scaled)."""
        return inv_scale_f0_hz(f0_scaled), inv_scale_db(pw_scaled)


CREPE_CAPACITIES = ("tiny", "small", "medium", "large", "full")


@register("preprocessing")
class OnlineF0PowerPreprocessor(F0PowerPreprocessor):
    """Audio only -> f0 from a pretrained CREPE run inside the model, and frame power.

    For datasets without precomputed f0 (or to track pitch on the fly). Returns
    `f0_hz`, `f0_confidence`, `pw_db`, `f0_scaled`, `pw_scaled`, each `[batch, time_steps, 1]`.
    The pitch tracker's weights are frozen and no gradient flows through its f0 (as for a
    dataset feature); it runs inside `tf.function`.

    With `padding` (the original DDSP's form and default, e.g. its models/vst/*.gin), features are not
    resampled: power is computed at 16 kHz (from 'audio_16k' when the features hold it) with
    the original's framing (`spectral_ops.compute_power`: 'center' gives
    n_samples / hop + 1 frames), and every output must have that many frames (ValueError
    naming the feature otherwise); `time_steps` is then unused.

    Args:
      frame_rate, frame_size: Hz and samples of the power frames.
      padding: 'center' | 'same' | 'valid' (see above), or None (this package's form:
        resample everything to `time_steps`).
      compute_power: compute power from audio (default True: the input holds only audio).
      compute_f0: track f0 with CREPE; False reads 'f0_hz' and 'f0_confidence' from the
        features (and builds no CREPE).
      crepe_saved_model_path: the original's CREPE choice: a capacity name ('full', 'tiny':
        the capacities whose weights ship offline), None (no CREPE; needs compute_f0=False)
        or '' ('tiny'). SavedModel folders are not supported (ValueError).
      viterbi: Viterbi decoding of CREPE's pitch (not supported inside the model: must be False).
      time_steps, sample_rate: as in `F0PowerPreprocessor` (`padding=None` only).
      crepe_capacity: this package's name for the CREPE capacity (wins when given).
    """

    def __init__(self, frame_rate: int = 250, frame_size: int = 1024, padding: str | None = "center",
                 compute_power: bool = True, compute_f0: bool = True, crepe_saved_model_path: str | None = "full",
                 viterbi: bool = False, time_steps: int = 1000, sample_rate: int = 16000,
                 crepe_capacity: str | None = None, name=None, **kwargs):
        if padding is not None and padding not in spectral_ops.PADDINGS:
            raise ValueError(f"OnlineF0PowerPreprocessor `padding` must be None or one of "
                             f"{spectral_ops.PADDINGS}, got {padding!r}.")
        if viterbi:
            raise ValueError("OnlineF0PowerPreprocessor `viterbi` decoding is not available inside the "
                             "model; use viterbi=False.")
        if crepe_capacity is not None:
            crepe_saved_model_path = crepe_capacity
        crepe_capacity = crepe_saved_model_path or "tiny"
        if crepe_saved_model_path:
            if crepe_saved_model_path not in CREPE_CAPACITIES:
                raise ValueError(f"OnlineF0PowerPreprocessor `crepe_saved_model_path` must be a CREPE capacity "
                                 f"{CREPE_CAPACITIES} or None (SavedModel folders are not supported), got "
                                 f"{crepe_saved_model_path!r}.")
        if compute_f0 and crepe_saved_model_path is None:
            raise ValueError("OnlineF0PowerPreprocessor: compute_f0=True needs a CREPE model "
                             "(`crepe_saved_model_path` is None).")
        # 16 kHz: the original computes these features at CREPE's rate.
        from ddsp_models.crepe import MODEL_SAMPLE_RATE

        super().__init__(time_steps, frame_rate, MODEL_SAMPLE_RATE if padding else sample_rate,
                         frame_size=frame_size, compute_power=compute_power, name=name, **kwargs)
        self.padding, self.compute_f0 = padding, bool(compute_f0)
        self.crepe_capacity = crepe_capacity
        self.crepe = None
        if self.compute_f0:
            from ddsp_models.crepe import PretrainedCREPE

            self.crepe = PretrainedCREPE(capacity=crepe_capacity, sample_rate=self.sample_rate,
                                         frame_rate=frame_rate, name="pretrained_crepe")

    def call(self, *inputs, training=None):
        features = self._features(inputs, ("audio",))
        owner = type(self).__name__
        if self.padding is not None:
            return self._call_framed(features)
        (audio,) = get_features(features, ["audio"], owner)
        if self.crepe is None:
            f0_hz, confidence = get_features(features, ["f0_hz", "f0_confidence"], owner + " (compute_f0=False)")
        else:
            pitch = self.crepe(audio)
            f0_hz, confidence = pitch["f0_hz"], pitch["f0_confidence"]
        tracked = dict(features, f0_hz=tf.stop_gradient(f0_hz))
        outputs = super().call(tracked, training=training)
        outputs["f0_confidence"] = self.resample(tf.stop_gradient(confidence), "f0_confidence")
        return outputs

    def _call_framed(self, features: dict) -> dict:
        """The original's form: 16 kHz features with its frame counts, nothing resampled."""
        owner = type(self).__name__
        key = "audio_16k" if "audio_16k" in features else "audio"
        (audio,) = get_features(features, [key], owner)
        audio = core.ensure_audio(audio, key)
        if self.compute_power:
            pw_db = spectral_ops.compute_power(
                audio, self.sample_rate, self.frame_rate, self.frame_size, padding=self.padding)
        else:
            (pw_db,) = get_features(features, ["power_db"], owner + " (compute_power=False)")
        if self.crepe is None:
            f0_hz, confidence = get_features(features, ["f0_hz", "f0_confidence"], owner + " (compute_f0=False)")
        else:
            pitch = self.crepe(audio)
            f0_hz, confidence = pitch["f0_hz"], pitch["f0_confidence"]
        hop = spectral_ops.hop_size(self.sample_rate, self.frame_rate)
        n_samples = audio.shape[1]
        n_frames = (n_samples // hop + 1 if self.padding == "center" else -(-n_samples // hop)
                    if self.padding == "same" else 1 + (n_samples - self.frame_size) // hop)
        outputs = {"f0_hz": tf.stop_gradient(f0_hz), "pw_db": pw_db, "f0_confidence": tf.stop_gradient(confidence)}
        for name, value in outputs.items():
            value = core.ensure_3d(value, name)
            if value.shape[1] != n_frames:
                raise ValueError(f"{owner}: '{name}' has {value.shape[1]} frames, but {n_samples} samples at "
                                 f"{self.sample_rate} Hz framed with padding {self.padding!r} at "
                                 f"{self.frame_rate} Hz give {n_frames}.")
            outputs[name] = value
        outputs.update(f0_scaled=scale_f0_hz(outputs["f0_hz"]), pw_scaled=scale_db(outputs["pw_db"]))
        return outputs
