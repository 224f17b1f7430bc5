"""InverseSynthesis (DDSP-inv): audio -> sinusoids -> harmonic controls, each resynthesised.

    audio --sinusoidal_encoder--> sin_amps, sin_freqs, noise_magnitudes
          --synth (Sinusoidal + FilteredNoise [+ trainable FilteredNoiseReverb])--> sin_audio
    sinusoids [stop_gradient] --harmonic_encoder--> harm_amp, harm_dist, f0_hz
          --harmonic frequencies k * f0, amplitudes harm_amp * harm_dist--> the same synth
          (with the sinusoidal branch's noise) --> harm_audio

Frame tensors are `[batch, n_frames, channels]` at the encoder's frame rate, frequencies in
Hz, amplitudes and noise gains linear; audio `[batch, n_samples]`.

Training modes, chosen by the features passed in:
  normal: `{'audio': ...}` (other keys, e.g. a dataset's `f0_hz`, are ignored).
  self-supervised: the features also carry the true controls of
    `training.synthetic_notes.generate_synthetic_notes` (`sin_amps`, `sin_freqs`,
    `noise_magnitudes`, `harm_amp`, `harm_dist`, `f0_hz`); the supervised losses are added.
  zipped: the original's structure, a list/tuple of feature dicts, one per provider of
    `training.data.ZippedProvider` (e.g. `(synthetic_notes, real_clips)`), its parts named
    by `zipped_parts` (e.g. ('synthetic', 'real'), in the tuple's order) or, for two parts
    as the original tells them apart, 'synthetic' (the part with 'sin_amps') and 'real'.
    Also accepted (with `zipped_parts`): one dict whose every key is `<part>/<feature>`
    (e.g. `synthetic/audio`, ..., `real/audio`; parts in sorted name order). The parts' audio is
    concatenated on the batch axis for one forward pass; the unprefixed outputs are the
    real part's (the first part without true controls), as the original returns them (its
    tensors, no nested views), and every part's are also there as `<part>/<output>`; each
    part's losses are computed on its own examples and named `<part>/<loss>`. A part with
    true controls gets the supervised losses; the unsupervised ones of the original's loss
    arguments only the other parts.

Loss names: this package's grouped losses (each loss object's `name`, prefixed by its branch):
  sin_<audio loss>, harm_<audio loss>        audio_losses on sin_audio / harm_audio;
  harm_<consistency loss>                    KDE consistency, predicted harmonics vs sinusoids;
  harm_<prior loss>                          prior on harm_dist;
  harm_<twm loss>                            TWM of the predicted f0 against the sinusoids;
  sin_<loss> (sinusoid_supervision_losses, noise_supervision_losses) and
  harm_<loss> (harmonic_supervision_losses)  against the true controls (self-supervised).
The original DDSP's loss arguments keep the original's names: sin_/harm_<audio loss>,
<consistency loss>, <prior>, <twm loss>, and ss_<loss> for the self-supervised ones (see
InverseSynthesis). In zipped mode every name is prefixed by '<part>/'.
"""
import tensorflow as tf

from ddsp_models import core, effects, inverse_losses, processors, synths
from ddsp_models.checks import positive_int
from ddsp_models.consistency_losses import HarmonicConsistencyLoss
from ddsp_models.gin_utils import register
from ddsp_models.training.models.model import Model, add_original_layout

TRUE_CONTROL_KEYS = ("sin_amps", "sin_freqs", "noise_magnitudes", "harm_amp", "harm_dist", "f0_hz")
# The 6-argument harmonic consistency losses (harm_amp, harm_dist, f0_hz and their targets).
HARMONIC_CONSISTENCY_LOSSES = (HarmonicConsistencyLoss, inverse_losses.InverseHarmonicConsistencyLoss)
# This package's loss arguments, each with the original's that replace it when given.
REPLACED_BY = {"audio_losses": ("losses",), "consistency_losses": ("sinusoidal_consistency_losses",),
               "sinusoid_supervision_losses": ("sinusoidal_consistency_losses",),
               "harmonic_supervision_losses": ("harmonic_consistency_losses",),
               "noise_supervision_losses": ("filtered_noise_consistency_loss",), "twm_losses": ("twm_loss",),
               "prior_losses": ("harmonic_distribution_prior",)}
OUTPUT_KEYS = ("sin_amps", "sin_freqs", "noise_magnitudes", "sin_audio", "harm_amp", "harm_dist", "f0_hz",
               "harm_sin_amps", "harm_sin_freqs", "harm_audio")


def build_sinusoidal_processor_group(n_samples: int, sample_rate: int, noise_window_size: int = 0,
                                     reverb: bool = False) -> processors.ProcessorGroup:
    """Sinusoidal + FilteredNoise -> Add (-> trainable FilteredNoiseReverb when `reverb`).

    Inputs (the original's names): 'amplitudes' (linear), 'frequencies' (Hz) `[batch,
    n_frames, n_sinusoids]` and 'noise_magnitudes' (linear gains) `[batch, n_frames,
    n_bands]`: the synths use them as given (no scale functions). Reverb sizes come from
    `FilteredNoiseReverb` gin bindings.
    """
    dag = [(synths.Sinusoidal(n_samples=n_samples, sample_rate=sample_rate, amp_scale_fn=None,
                              freq_scale_fn=None, name="sinusoidal"), ["amplitudes", "frequencies"]),
           (synths.FilteredNoise(n_samples=n_samples, window_size=noise_window_size, scale_fn=None,
                                 name="filtered_noise"), ["noise_magnitudes"]),
           (processors.Add(name="add"), ["filtered_noise/signal", "sinusoidal/signal"])]
    if reverb:
        dag.append((effects.FilteredNoiseReverb(trainable=True, name="reverb"), ["add/signal"]))
    return processors.ProcessorGroup(dag=dag, name="processor_group")


def _loss_list(value, name: str) -> list:
    """None -> []; a loss -> [loss]; a list/tuple -> list. TypeError unless each is callable."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        value = [value]
    for loss in value:
        if not callable(loss):
            raise TypeError(f"InverseSynthesis `{name}` must hold loss objects, got {type(loss).__name__}.")
    return list(value)


def _single_loss(value, name: str):
    """None, or one callable loss object (TypeError otherwise)."""
    if value is not None and not callable(value):
        raise TypeError(f"InverseSynthesis `{name}` must be a loss object, got {type(value).__name__}.")
    return value


def original_freq_scale(logits) -> tf.Tensor:
    """The original's default sinusoid frequency scaling: `core.frequencies_softmax` of 64
    logits per sinusoid over log-spaced bins from 20 to 8000 Hz; `[batch, t, n * 64]` ->
    `[batch, t, n]`, Hz."""
    return core.frequencies_softmax(logits, depth=64)


def check_parts(parts) -> tuple:
    """`zipped_parts` as a tuple of distinct non-empty names without '/' (() for None)."""
    if parts is None:
        return ()
    if isinstance(parts, str) or not isinstance(parts, (list, tuple)):
        raise TypeError(f"InverseSynthesis `zipped_parts` must be a list of part names, e.g. "
                         f"('synthetic', 'real'), got {parts!r}.")
    parts = tuple(parts)
    if len(set(parts)) != len(parts) or not all(isinstance(p, str) and p and "/" not in p
                                                 for p in parts):
        raise ValueError(f"InverseSynthesis `zipped_parts` must be distinct, non-empty names "
                         f"without '/', got {parts!r}.")
    return parts


def split_parts(features: dict, parts: tuple):
    """Zipped features `{'<part>/<key>': ...}` -> `{part: {key: ...}}` (parts in sorted name
    order); None for plain features (no key starts with one of `parts` and '/', or no
    `parts` at all).

    Args:
      features: a batch.
      parts: the part names of zipped batches (`InverseSynthesis.zipped_parts`).

    Raises:
      ValueError: some keys belong to a part and others not, or a part has neither 'audio'
        nor 'sin_amps' (true controls to render it from).
    """
    in_part = {key: key.partition("/")[0] for key in features
               if "/" in key and key.partition("/")[0] in parts}
    if not in_part:
        return None
    if len(in_part) != len(features):
        plain = sorted(key for key in features if key not in in_part)
        raise ValueError(f"InverseSynthesis: zipped features must all be '<part>/<key>' with a part of "
                         f"zipped_parts {list(parts)}, but {plain} are not.")
    split = {}
    for key, part in in_part.items():
        split.setdefault(part, {})[key[len(part) + 1:]] = features[key]
    for part, part_features in split.items():
        if "audio" not in part_features and "sin_amps" not in part_features:
            raise ValueError(f"InverseSynthesis: zipped part {part!r} has neither '{part}/audio' "
                             f"nor the true controls to render it from "
                             f"(has {sorted(part_features)}).")
    return {part: split[part] for part in sorted(split)}


@register("models")
class InverseSynthesis(Model):
    """DDSP inverse synthesis (Engel et al., ICML 2020 SAS workshop, "DDSP-inv").

    The original DDSP's arguments come first, with its defaults and meaning:
      sinusoidal_encoder: audio features `{'audio': [batch, n_samples]}` -> either this
        package's scaled controls {'sin_amps' (linear), 'sin_freqs' (Hz),
        'noise_magnitudes' (linear)} (`encoders.ResnetSinusoidalEncoder`), or the original's
        raw network outputs {'frequencies', 'amplitudes', 'noise_magnitudes'}, which the
        model scales as the original does: sin_freqs = freq_scale_fn(frequencies),
        sin_amps = exp_sigmoid(amplitudes), noise_magnitudes = exp_sigmoid(noise logits);
        required.
      harmonic_encoder: {'sin_amps', 'sin_freqs'} -> {'harm_amp', 'harm_dist', 'f0_hz'} (e.g.
        `encoders.SinusoidalToHarmonicEncoder`), or None (sinusoidal branch only).
      losses: audio losses, called (audio, sin_audio) -> 'sin_<name>' and, with a harmonic
        encoder, (audio, harm_audio) -> 'harm_<name>'.
      sinusoidal_consistency_losses: called (sin_amps, sin_freqs, harm_sin_amps,
        harm_sin_freqs) -> '<name>' (with a harmonic encoder; the sinusoids through a
        stop-gradient when `stop_gradient`) and, self-supervised, (sin_amps, sin_freqs, true
        sin_amps, true sin_freqs) -> 'ss_<name>'.
      harmonic_consistency_losses: self-supervised, with a harmonic encoder: a
        (Inverse)HarmonicConsistencyLoss is called (harm_amp, true, harm_dist, true, f0_hz,
        true) -> 'ss_<each name>'; any other loss (harm_amp, f0_hz, true harm_amp, true
        f0_hz) -> 'ss_harm_<name>'.
      filtered_noise_consistency_loss: self-supervised, (noise_magnitudes, true ones) ->
        'ss_<name>'.
      twm_loss: called (f0 candidates, sin_freqs, sin_amps) -> '<name>'; the candidates are
        f0_hz with a harmonic encoder, else sin_freqs.
      harmonic_distribution_prior: called (harm_dist) -> '<name>' (with a harmonic encoder).
      freq_scale_fn: raw frequency logits -> Hz for an encoder returning the original's
        'frequencies' (None: `core.frequencies_softmax` with depth 64, 20 - 8000 Hz, as the
        original). An encoder returning scaled 'sin_freqs' leaves nothing to scale: giving
        freq_scale_fn then raises a ValueError on the first call.
      reverb: add a trainable FilteredNoiseReverb after the synths (both branches; default
        True as the original; its sizes come from `FilteredNoiseReverb` bindings).
      n_samples, sample_rate: synthesized audio length (samples) and rate (Hz).
      stop_gradient: the harmonic branch sees (and its losses compare with) the sinusoids
        and noise through a stop-gradient, so harmonic losses do not train the sinusoidal
        encoder.
    Each of the original's loss arguments is None (no such loss, the original's default), a
    loss or a list of them; unsupervised ones apply to every batch without true controls
    and, as the original, to self-supervised batches too; in zipped mode (below) only to
    parts without true controls, as the original applies them to its real batches only.

    This package's arguments follow (use them by keyword):
      noise_window_size: FIR length of the noise filters (0: 2 * (n_bands - 1)).
      f0_audio_gradient: let the audio losses on harm_audio train f0 (off by default: the
        gradient of a spectral loss with respect to frequency is unreliable and, measured
        here, drove f0 to the edge of its range; f0 then learns from the consistency, TWM
        and supervised losses, the amplitudes from everything).
      audio_losses: called (target_audio, audio) on both branches -> 'sin_<name>',
        'harm_<name>'.
      consistency_losses: called (harm_sin_amps, harm_sin_freqs, sin_amps, sin_freqs) ->
        'harm_<name>'.
      prior_losses: called (harm_dist) -> 'harm_<name>'.
      twm_losses: called (f0_hz, sin_freqs, sin_amps) -> 'harm_<name>'.
      sinusoid_supervision_losses: self-supervised, called (sin_amps, sin_freqs, true
        sin_amps, true sin_freqs) -> 'sin_<name>'.
      noise_supervision_losses: self-supervised, called (noise_magnitudes, true ones) ->
        'sin_<name>'.
      harmonic_supervision_losses: self-supervised, called (harm_amp, true, harm_dist, true,
        f0_hz, true) -> 'harm_<name>'.
      Each: None or [] for none (models/inverse_synthesis.gin binds this package's set). An
      original loss argument that is given replaces this package's of the same role:
      losses -> audio_losses; sinusoidal_consistency_losses -> consistency_losses and
      sinusoid_supervision_losses; harmonic_consistency_losses ->
      harmonic_supervision_losses; filtered_noise_consistency_loss ->
      noise_supervision_losses; twm_loss -> twm_losses; harmonic_distribution_prior ->
      prior_losses.
      zipped_parts: the part names of zipped batches (`data.ZippedProvider.names`, e.g.
        ``('synthetic', 'real')``; bound beside the provider in
        ``papers/icml2020/finetune_dataset.gin``), in the order of a zipped batch's tuple
        (the original's structure, which trains in zipped mode; None: two parts are named
        as the original tells them apart). A dict batch whose keys are
        ``'<part>/<feature>'`` for these parts trains in zipped mode too; plain batches
        (e.g. evaluation clips) run as usual.

    Features holding true controls but no 'audio' (the original's synthetic-notes records)
    get their audio rendered from the controls by the model's synthesizer, as the original
    does.
    """

    accepts_zipped_batches = True

    def __init__(self, sinusoidal_encoder=None, harmonic_encoder=None, losses=None,
                 sinusoidal_consistency_losses=None, harmonic_consistency_losses=None,
                 filtered_noise_consistency_loss=None, twm_loss=None, harmonic_distribution_prior=None,
                 freq_scale_fn=None, reverb: bool = True, n_samples: int = 64000, sample_rate: int = 16000,
                 stop_gradient: bool = True, noise_window_size: int = 0, f0_audio_gradient: bool = False,
                 audio_losses=None, consistency_losses=None, prior_losses=None, twm_losses=None,
                 sinusoid_supervision_losses=None, noise_supervision_losses=None,
                 harmonic_supervision_losses=None, zipped_parts=None, **kwargs):
        super().__init__(**kwargs)
        if sinusoidal_encoder is None:
            raise ValueError("InverseSynthesis: `sinusoidal_encoder` is required.")
        for arg, value in (("n_samples", n_samples), ("sample_rate", sample_rate)):
            positive_int(f"InverseSynthesis `{arg}`", value)
        if freq_scale_fn is not None and not callable(freq_scale_fn):
            raise TypeError(f"InverseSynthesis `freq_scale_fn` must be callable, got {type(freq_scale_fn).__name__}.")
        self.zipped_parts = check_parts(zipped_parts)
        self.sinusoidal_encoder = sinusoidal_encoder
        self.harmonic_encoder = harmonic_encoder
        self.n_samples, self.sample_rate = n_samples, sample_rate
        self.reverb, self.stop_gradient = bool(reverb), bool(stop_gradient)
        self.f0_audio_gradient = bool(f0_audio_gradient)
        self.freq_scale_given = freq_scale_fn is not None
        self.freq_scale_fn = freq_scale_fn or original_freq_scale
        self.amps_scale_fn = core.exp_sigmoid
        self.processor_group = build_sinusoidal_processor_group(n_samples, sample_rate, int(noise_window_size),
                                                                self.reverb)
        # The original's loss objects, applied as it applies them (its names, its arguments).
        self.audio_loss_objs = _loss_list(losses, "losses")
        self.sinusoidal_consistency_losses = _loss_list(sinusoidal_consistency_losses,
                                                        "sinusoidal_consistency_losses")
        self.harmonic_consistency_losses = _loss_list(harmonic_consistency_losses, "harmonic_consistency_losses")
        self.filtered_noise_consistency_loss = _single_loss(filtered_noise_consistency_loss,
                                                            "filtered_noise_consistency_loss")
        self.twm_loss = _single_loss(twm_loss, "twm_loss")
        self.harmonic_distribution_prior = _single_loss(harmonic_distribution_prior, "harmonic_distribution_prior")
        # This package's, where the original's of the same role is not given.
        given = {name for name, value in (
            ("losses", losses), ("sinusoidal_consistency_losses", sinusoidal_consistency_losses),
            ("harmonic_consistency_losses", harmonic_consistency_losses),
            ("filtered_noise_consistency_loss", filtered_noise_consistency_loss), ("twm_loss", twm_loss),
            ("harmonic_distribution_prior", harmonic_distribution_prior)) if value is not None}
        ours = {"audio_losses": audio_losses, "consistency_losses": consistency_losses,
                "prior_losses": prior_losses, "twm_losses": twm_losses,
                "sinusoid_supervision_losses": sinusoid_supervision_losses,
                "noise_supervision_losses": noise_supervision_losses,
                "harmonic_supervision_losses": harmonic_supervision_losses}
        for name, value in ours.items():
            replaced = given & set(REPLACED_BY[name])
            setattr(self, name, [] if replaced else _loss_list(value, name))

    # ------------------------------------------------------------------ forward
    def synthesize(self, sin_amps, sin_freqs, noise_magnitudes) -> tf.Tensor:
        """Audio `[batch, n_samples]` of sinusoids (linear amps, Hz) plus filtered noise."""
        return self.synthesize_outputs(sin_amps, sin_freqs, noise_magnitudes)["out/signal"]

    def synthesize_outputs(self, sin_amps, sin_freqs, noise_magnitudes) -> dict:
        """The processor group's flat outputs dict ('sinusoidal/signal', ...,
        'out/signal') for sinusoids (linear amps, Hz) plus filtered noise."""
        return self.processor_group({"amplitudes": sin_amps, "frequencies": sin_freqs,
                                     "noise_magnitudes": noise_magnitudes}, return_outputs_dict=True)

    def forward(self, audio, training=False) -> dict:
        """Both branches on `[batch, n_samples]` audio -> dict of OUTPUT_KEYS (batch first),
        the sinusoidal pass's processor outputs flat ('sinusoidal/signal', ...,
        'out/signal') and, as the original DDSP returns them, 'audio', 'harm_freqs',
        'harm_amps' (= harm_sin_*) and the nested layout of that pass
        (`outputs['sinusoidal']['signal']`, `outputs['reverb']['signal']`, `outputs['out']`,
        `outputs['inputs']`, 'amplitudes', 'frequencies'; the same tensors)."""
        audio = core.ensure_audio(audio, "audio")
        if audio.shape[1] is not None and audio.shape[1] != self.n_samples:
            raise ValueError(f"InverseSynthesis: features['audio'] has {audio.shape[1]} samples, but the "
                             f"model synthesizes n_samples={self.n_samples}.")
        outputs = self.sinusoids(self.sinusoidal_encoder({"audio": audio}, training=training))
        processed = self.synthesize_outputs(outputs["sin_amps"], outputs["sin_freqs"],
                                            outputs["noise_magnitudes"])
        outputs["sin_audio"] = processed["out/signal"]
        outputs.update({key: value for key, value in processed.items() if "/" in key})
        # The original's layout (the same tensors): its input 'audio', the sinusoidal pass
        # nested ('sinusoidal': {'signal', 'controls'}, ..., 'out', 'inputs') and its dag inputs.
        outputs["audio"] = audio
        add_original_layout(outputs, self.processor_group.nested_outputs(processed))
        if self.harmonic_encoder is None:
            return outputs
        sin_amps, sin_freqs, noise = self._harmonic_branch_inputs(outputs)
        harmonic = self.harmonic_encoder({"sin_amps": sin_amps, "sin_freqs": sin_freqs}, training=training)
        outputs.update(harm_amp=harmonic["harm_amp"], harm_dist=harmonic["harm_dist"], f0_hz=harmonic["f0_hz"])
        n_harmonics = harmonic["harm_dist"].shape[-1]
        outputs["harm_sin_freqs"] = core.get_harmonic_frequencies(harmonic["f0_hz"], n_harmonics)
        outputs["harm_sin_amps"] = harmonic["harm_amp"] * harmonic["harm_dist"]
        synth_freqs = outputs["harm_sin_freqs"] if self.f0_audio_gradient else tf.stop_gradient(
            outputs["harm_sin_freqs"])
        outputs["harm_audio"] = self.synthesize(outputs["harm_sin_amps"], synth_freqs, noise)
        outputs.update(harm_freqs=outputs["harm_sin_freqs"], harm_amps=outputs["harm_sin_amps"])  # original names
        return outputs

    def sinusoids(self, encoded: dict) -> dict:
        """The sinusoidal encoder's outputs -> {'sin_amps', 'sin_freqs', 'noise_magnitudes'}:
        this package's scaled controls as given, or the original's raw 'frequencies',
        'amplitudes', 'noise_magnitudes' scaled by freq_scale_fn and exp_sigmoid.

        Raises:
          ValueError: neither set of keys, or freq_scale_fn given for scaled 'sin_freqs'.
        """
        encoded = dict(encoded)
        if "frequencies" in encoded:
            missing = [k for k in ("amplitudes", "noise_magnitudes") if k not in encoded]
            if missing:
                raise ValueError(f"InverseSynthesis: the sinusoidal_encoder returned 'frequencies' but no {missing}.")
            return {"sin_amps": self.amps_scale_fn(encoded["amplitudes"]),
                    "sin_freqs": self.freq_scale_fn(encoded["frequencies"]),
                    "noise_magnitudes": self.amps_scale_fn(encoded["noise_magnitudes"])}
        missing = [k for k in ("sin_amps", "sin_freqs", "noise_magnitudes") if k not in encoded]
        if missing:
            raise ValueError(f"InverseSynthesis: the sinusoidal_encoder returned no {missing} (nor the "
                             f"original's raw 'frequencies', 'amplitudes', 'noise_magnitudes').")
        if self.freq_scale_given:
            raise ValueError("InverseSynthesis `freq_scale_fn` scales an encoder's raw 'frequencies', but the "
                             "sinusoidal_encoder returns 'sin_freqs' already in Hz: leave freq_scale_fn None.")
        return encoded

    def _harmonic_branch_inputs(self, outputs):
        """(sin_amps, sin_freqs, noise_magnitudes), stop-gradient'ed when `stop_gradient`."""
        values = (outputs["sin_amps"], outputs["sin_freqs"], outputs["noise_magnitudes"])
        return tuple(tf.stop_gradient(v) for v in values) if self.stop_gradient else values

    def with_audio(self, features: dict) -> dict:
        """`features`, with 'audio' rendered from the true controls (sin_amps, sin_freqs,
        noise_magnitudes) by the model's synthesizer when it is absent."""
        if "audio" in features or "sin_amps" not in features:
            return features
        (sin_amps, sin_freqs, noise) = (core.ensure_3d(features[key], key) for key in
                                        ("sin_amps", "sin_freqs", "noise_magnitudes"))
        return dict(features, audio=self.synthesize(sin_amps, sin_freqs, noise))

    def parse_zipped_features(self, features) -> dict:
        """The original's zipped batch (a list/tuple of feature dicts, one per provider of a
        `data.ZippedProvider`, in its order) as `{part name: features}` in that order. Names:
        `zipped_parts` when it names as many parts; else, for two parts, as the original
        tells them apart, 'synthetic' for the one with true controls ('sin_amps') and 'real'
        for the other.

        Raises:
          ValueError: an element is not a dict, or the parts cannot be named.
        """
        features = list(features)
        if not all(isinstance(part, dict) for part in features):
            raise ValueError(f"InverseSynthesis: a zipped batch must be a list/tuple of feature dicts, got "
                             f"{[type(part).__name__ for part in features]}.")
        if len(self.zipped_parts) == len(features):
            names = self.zipped_parts
        elif len(features) == 2 and sum("sin_amps" in part for part in features) == 1:
            names = ("synthetic", "real") if "sin_amps" in features[0] else ("real", "synthetic")
        else:
            raise ValueError(f"InverseSynthesis: cannot name the {len(features)} parts of a zipped batch: "
                             f"zipped_parts is {list(self.zipped_parts)} and "
                             f"{sum('sin_amps' in part for part in features)} part(s) hold 'sin_amps' (the "
                             "original's rule needs two parts, one with true controls).")
        return dict(zip(names, features))

    def call(self, features, training=False):
        """Outputs (see module doc); with `compute_losses`, the losses of each mode."""
        if isinstance(features, (list, tuple)):
            parts = self.parse_zipped_features(features)
        else:
            parts = split_parts(features, self.zipped_parts)
        if parts is None:
            features = self.with_audio(features)
            if "audio" not in features:
                hint = (" Zipped batches ('<part>/<feature>') need InverseSynthesis.zipped_parts."
                        if any("/" in key for key in features) else "")
                raise ValueError(f"InverseSynthesis: features need 'audio' [batch, n_samples] "
                                 f"(have {sorted(features)}).{hint}")
            outputs = self.forward(features["audio"], training=training)
            if self.compute_losses:
                self._add_losses(features, outputs, prefix="")
            return outputs
        parts = {name: self.with_audio(part) for name, part in parts.items()}
        audios = [core.ensure_audio(part["audio"], f"{name}/audio") for name, part in parts.items()]
        outputs = self.forward(tf.concat(audios, axis=0), training=training)
        whole = {key: value for key, value in outputs.items()
                 if not isinstance(value, dict)}  # as the original: no nested views
        real = next((name for name, part in parts.items() if "sin_amps" not in part),
                    next(iter(parts)))
        outputs, start = {}, 0
        for (name, part), audio in zip(parts.items(), audios):
            size = audio.shape[0] if audio.shape[0] is not None else tf.shape(audio)[0]
            part_outputs = {key: value[start:start + size] for key, value in whole.items()}
            start += size
            if self.compute_losses:
                self._add_losses(part, part_outputs, prefix=f"{name}/", zipped=True)
            outputs.update({f"{name}/{key}": value for key, value in part_outputs.items()})
            if name == real:
                outputs.update(part_outputs)
        return outputs

    # ------------------------------------------------------------------ losses
    def _add_losses(self, features, outputs, prefix: str, zipped: bool = False):
        """Adds one batch's (or zipped part's) losses, names prefixed by `prefix`: this
        package's (``sin_`` / ``harm_`` by branch), then the original's (its names)."""
        supervised = "sin_amps" in features
        true = self.true_controls(features, outputs["sin_amps"].shape[1], prefix) if supervised else None
        self._add_package_losses(features, outputs, true, prefix)
        self._add_original_losses(features, outputs, true, prefix, unsupervised=not (zipped and supervised))

    def _add_package_losses(self, features, outputs, true, prefix: str):
        """This package's losses (see the class doc); `true`: the true controls or None."""
        target = core.ensure_audio(features["audio"], f"{prefix}audio")
        harmonic = self.harmonic_encoder is not None
        sin, harm = f"{prefix}sin_", f"{prefix}harm_"
        self._update_losses_dict(self.audio_losses, target, outputs["sin_audio"], prefix=sin)
        if harmonic:
            sin_amps, sin_freqs, _ = self._harmonic_branch_inputs(outputs)
            self._update_losses_dict(self.audio_losses, target, outputs["harm_audio"], prefix=harm)
            self._update_losses_dict(self.consistency_losses, outputs["harm_sin_amps"],
                                     outputs["harm_sin_freqs"], sin_amps, sin_freqs, prefix=harm)
            self._update_losses_dict(self.prior_losses, outputs["harm_dist"], prefix=harm)
            self._update_losses_dict(self.twm_losses, outputs["f0_hz"], sin_freqs, sin_amps,
                                     prefix=harm)
        if true is None:
            return
        self._update_losses_dict(self.sinusoid_supervision_losses, outputs["sin_amps"],
                                 outputs["sin_freqs"], true["sin_amps"], true["sin_freqs"],
                                 prefix=sin)
        self._update_losses_dict(self.noise_supervision_losses, outputs["noise_magnitudes"],
                                 true["noise_magnitudes"], prefix=sin)
        if harmonic:
            self._update_losses_dict(self.harmonic_supervision_losses, outputs["harm_amp"],
                                     true["harm_amp"], outputs["harm_dist"], true["harm_dist"],
                                     outputs["f0_hz"], true["f0_hz"], prefix=harm)

    def _add_original_losses(self, features, outputs, true, prefix: str, unsupervised: bool):
        """The original's loss arguments, applied with its names and arguments (class doc);
        `true`: the true controls or None; `unsupervised`: add the unsupervised ones."""
        o = outputs
        harmonic = self.harmonic_encoder is not None
        if unsupervised:
            target = core.ensure_audio(features["audio"], f"{prefix}audio")
            self._update_losses_dict(self.audio_loss_objs, target, o["sin_audio"], prefix=f"{prefix}sin_")
            if harmonic:
                self._update_losses_dict(self.harmonic_distribution_prior, o["harm_dist"], prefix=prefix)
                self._update_losses_dict(self.audio_loss_objs, target, o["harm_audio"], prefix=f"{prefix}harm_")
                sin_amps, sin_freqs, _ = self._harmonic_branch_inputs(o)
                self._update_losses_dict(self.sinusoidal_consistency_losses, sin_amps, sin_freqs,
                                         o["harm_sin_amps"], o["harm_sin_freqs"], prefix=prefix)
            f0_candidates = o["f0_hz"] if harmonic else o["sin_freqs"]
            self._update_losses_dict(self.twm_loss, f0_candidates, o["sin_freqs"], o["sin_amps"], prefix=prefix)
        if true is None:
            return
        ss = f"{prefix}ss_"
        self._update_losses_dict(self.sinusoidal_consistency_losses, o["sin_amps"], o["sin_freqs"],
                                 true["sin_amps"], true["sin_freqs"], prefix=ss)
        self._update_losses_dict(self.filtered_noise_consistency_loss, o["noise_magnitudes"],
                                 true["noise_magnitudes"], prefix=ss)
        if not harmonic:
            return
        for loss in self.harmonic_consistency_losses:
            if isinstance(loss, HARMONIC_CONSISTENCY_LOSSES):
                self._update_losses_dict(loss, o["harm_amp"], true["harm_amp"], o["harm_dist"], true["harm_dist"],
                                         o["f0_hz"], true["f0_hz"], prefix=ss)
            else:  # a sinusoid-style consistency loss on (amplitude, f0)
                self._update_losses_dict(loss, o["harm_amp"], o["f0_hz"], true["harm_amp"], true["f0_hz"],
                                         prefix=f"{ss}harm_")

    @staticmethod
    def true_controls(features, n_frames: int, prefix: str = "") -> dict:
        """The self-supervised targets `[batch, n_frames, c]`, resampled to n_frames if needed.

        Raises:
          ValueError: naming the missing keys (all of TRUE_CONTROL_KEYS are needed).
        """
        missing = [key for key in TRUE_CONTROL_KEYS if key not in features]
        if missing:
            raise ValueError(f"InverseSynthesis: self-supervised features need {list(TRUE_CONTROL_KEYS)}; "
                             f"missing {[prefix + k for k in missing]}.")
        true = {}
        for key in TRUE_CONTROL_KEYS:
            value = core.ensure_3d(features[key], prefix + key)
            if value.shape[1] != n_frames:
                value = core.resample(value, n_frames, method="linear")
            true[key] = value
        return true

    def get_audio_from_outputs(self, outputs):
        """`harm_audio` with a harmonic encoder, else `sin_audio` (`[batch, n_samples]`)."""
        return outputs["harm_audio" if self.harmonic_encoder is not None else "sin_audio"]
