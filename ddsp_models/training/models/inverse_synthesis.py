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
  zipped (only with `zipped_parts`, e.g. ('synthetic', 'real')): every key is
    `<part>/<feature>` for one of those parts (e.g. `synthetic/audio`, `synthetic/f0_hz`,
    ..., `real/audio`), as `training.data.ZippedProvider` yields them. The parts' audio is
    concatenated on the batch axis (parts in sorted name order) for one forward pass; the
    outputs come back whole (unprefixed) and split per part (`<part>/<output>`), and each
    part's losses are computed on its own examples and named `<part>/<loss>`. A part with
    true controls gets the supervised losses.

Loss names (each loss object's `name`, prefixed by its branch):
  sin_<audio loss>, harm_<audio loss>        audio_losses on sin_audio / harm_audio;
  harm_<consistency loss>                    KDE consistency, predicted harmonics vs sinusoids;
  harm_<prior loss>                          prior on harm_dist;
  harm_<twm loss>                            TWM of the predicted f0 against the sinusoids;
  sin_<loss> (sinusoid_supervision_losses, noise_supervision_losses) and
  harm_<loss> (harmonic_supervision_losses)  against the true controls (self-supervised).
"""
import tensorflow as tf

from ddsp_models import core, effects, inverse_losses, processors, synths
from ddsp_models.checks import positive_int
from ddsp_models.gin_utils import register
from ddsp_models.losses import SpectralLoss
from ddsp_models.training.models.model import Model

TRUE_CONTROL_KEYS = ("sin_amps", "sin_freqs", "noise_magnitudes", "harm_amp", "harm_dist", "f0_hz")
OUTPUT_KEYS = ("sin_amps", "sin_freqs", "noise_magnitudes", "sin_audio", "harm_amp", "harm_dist", "f0_hz",
               "harm_sin_amps", "harm_sin_freqs", "harm_audio")


def build_sinusoidal_processor_group(n_samples: int, sample_rate: int, noise_window_size: int = 0,
                                     reverb: bool = False) -> processors.ProcessorGroup:
    """Sinusoidal + FilteredNoise -> Add (-> trainable FilteredNoiseReverb when `reverb`).

    Inputs: 'sin_amps' (linear), 'sin_freqs' (Hz) `[batch, n_frames, n_sinusoids]` and
    'noise_magnitudes' (linear gains) `[batch, n_frames, n_bands]`: the synths use them as
    given (no scale functions). Reverb sizes come from `FilteredNoiseReverb` gin bindings.
    """
    dag = [(synths.Sinusoidal(n_samples=n_samples, sample_rate=sample_rate, amp_scale_fn=None,
                              freq_scale_fn=None, name="sinusoidal"), ["sin_amps", "sin_freqs"]),
           (synths.FilteredNoise(n_samples=n_samples, window_size=noise_window_size, scale_fn=None,
                                 name="filtered_noise"), ["noise_magnitudes"]),
           (processors.Add(name="add"), ["filtered_noise/signal", "sinusoidal/signal"])]
    if reverb:
        dag.append((effects.FilteredNoiseReverb(trainable=True, name="reverb"), ["add/signal"]))
    return processors.ProcessorGroup(dag=dag, name="processor_group")


def _loss_list(value, default, name: str) -> list:
    """None -> `default()`; a loss -> [loss]; a list/tuple -> list. TypeError otherwise."""
    if value is None:
        return list(default())
    if not isinstance(value, (list, tuple)):
        value = [value]
    for loss in value:
        if not callable(loss):
            raise TypeError(f"InverseSynthesis `{name}` must hold loss objects, got {type(loss).__name__}.")
    return list(value)


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

    Args:
      sinusoidal_encoder: audio -> {'sin_amps', 'sin_freqs' (Hz), 'noise_magnitudes'}
        (e.g. `encoders.ResnetSinusoidalEncoder`); required.
      harmonic_encoder: {'sin_amps', 'sin_freqs'} -> {'harm_amp', 'harm_dist', 'f0_hz'} (e.g.
        `encoders.SinusoidalToHarmonicEncoder`), or None (sinusoidal branch only).
      n_samples, sample_rate: synthesized audio length (samples) and rate (Hz).
      noise_window_size: FIR length of the noise filters (0: 2 * (n_bands - 1)).
      reverb: add a trainable FilteredNoiseReverb after the synths (both branches).
      stop_gradient: the harmonic branch sees (and its losses compare with) the sinusoids
        and noise through a stop-gradient, so harmonic losses do not train the sinusoidal
        encoder.
      f0_audio_gradient: let the audio losses on harm_audio train f0 (off by default: the
        gradient of a spectral loss with respect to frequency is unreliable and, measured
        here, drove f0 to the edge of its range; f0 then learns from the consistency, TWM
        and supervised losses, the amplitudes from everything).
      audio_losses: called (target_audio, audio) on both branches (default: SpectralLoss
        with linear and log magnitudes).
      consistency_losses: called (harm_sin_amps, harm_sin_freqs, sin_amps, sin_freqs)
        (default: InverseKDEConsistencyLoss).
      prior_losses: called (harm_dist) (default: HarmonicDistributionPrior(weight=0.1)).
      twm_losses: called (f0_hz, sin_freqs, sin_amps) (default: InverseTWMLoss(weight=0.1)).
      sinusoid_supervision_losses: self-supervised, called (sin_amps, sin_freqs, true
        sin_amps, true sin_freqs) (default: InverseKDEConsistencyLoss).
      noise_supervision_losses: self-supervised, called (noise_magnitudes, true ones)
        (default: InverseFilteredNoiseConsistencyLoss).
      harmonic_supervision_losses: self-supervised, called (harm_amp, true, harm_dist, true,
        f0_hz, true) (default: InverseHarmonicConsistencyLoss).
      Each loss list: None for the default, [] for none.
      zipped_parts: the part names of zipped batches (`data.ZippedProvider.names`, e.g.
        ``('synthetic', 'real')``; bound beside the provider in
        ``papers/icml2020/finetune_dataset.gin``). A batch whose keys are
        ``'<part>/<feature>'`` for these parts trains in zipped mode; plain batches (e.g.
        evaluation clips) run as usual. None: every batch is plain.

    The original DDSP's loss arguments are accepted (when given, they stand in for ours):
    `losses` (audio_losses), `sinusoidal_consistency_losses` (consistency_losses and
    sinusoid_supervision_losses, as the original uses them for both), `harmonic_consistency_losses`
    (harmonic_supervision_losses), `filtered_noise_consistency_loss`
    (noise_supervision_losses), `twm_loss` (twm_losses), `harmonic_distribution_prior`
    (prior_losses). Features holding true controls but no 'audio' (the original's
    synthetic-notes records) get their audio rendered from the controls by the model's
    synthesizer, as the original does.
    """

    def __init__(self, sinusoidal_encoder=None, harmonic_encoder=None, n_samples: int = 64000,
                 sample_rate: int = 16000, noise_window_size: int = 0, reverb: bool = False,
                 stop_gradient: bool = True, f0_audio_gradient: bool = False, audio_losses=None,
                 consistency_losses=None, prior_losses=None, twm_losses=None, sinusoid_supervision_losses=None,
                 noise_supervision_losses=None, harmonic_supervision_losses=None, zipped_parts=None,
                 losses=None, sinusoidal_consistency_losses=None, harmonic_consistency_losses=None,
                 filtered_noise_consistency_loss=None, twm_loss=None, harmonic_distribution_prior=None,
                 **kwargs):
        super().__init__(**kwargs)
        # The original's arguments, where given, stand in for ours.
        audio_losses = losses if losses is not None else audio_losses
        if sinusoidal_consistency_losses is not None:
            consistency_losses = sinusoid_supervision_losses = sinusoidal_consistency_losses
        if harmonic_consistency_losses is not None:
            harmonic_supervision_losses = harmonic_consistency_losses
        if filtered_noise_consistency_loss is not None:
            noise_supervision_losses = filtered_noise_consistency_loss
        twm_losses = twm_loss if twm_loss is not None else twm_losses
        if harmonic_distribution_prior is not None:
            prior_losses = harmonic_distribution_prior
        if sinusoidal_encoder is None:
            raise ValueError("InverseSynthesis: `sinusoidal_encoder` is required.")
        for arg, value in (("n_samples", n_samples), ("sample_rate", sample_rate)):
            positive_int(f"InverseSynthesis `{arg}`", value)
        self.zipped_parts = check_parts(zipped_parts)
        self.sinusoidal_encoder = sinusoidal_encoder
        self.harmonic_encoder = harmonic_encoder
        self.n_samples, self.sample_rate = n_samples, sample_rate
        self.reverb, self.stop_gradient = bool(reverb), bool(stop_gradient)
        self.f0_audio_gradient = bool(f0_audio_gradient)
        self.processor_group = build_sinusoidal_processor_group(n_samples, sample_rate, int(noise_window_size),
                                                                self.reverb)
        self.audio_losses = _loss_list(
            audio_losses, lambda: [SpectralLoss(logmag_weight=1.0)], "audio_losses")
        self.consistency_losses = _loss_list(
            consistency_losses, lambda: [inverse_losses.InverseKDEConsistencyLoss()], "consistency_losses")
        self.prior_losses = _loss_list(
            prior_losses, lambda: [inverse_losses.HarmonicDistributionPrior(weight=0.1)], "prior_losses")
        self.twm_losses = _loss_list(twm_losses, lambda: [inverse_losses.InverseTWMLoss(weight=0.1)], "twm_losses")
        self.sinusoid_supervision_losses = _loss_list(
            sinusoid_supervision_losses, lambda: [inverse_losses.InverseKDEConsistencyLoss()],
            "sinusoid_supervision_losses")
        self.noise_supervision_losses = _loss_list(
            noise_supervision_losses, lambda: [inverse_losses.InverseFilteredNoiseConsistencyLoss()],
            "noise_supervision_losses")
        self.harmonic_supervision_losses = _loss_list(
            harmonic_supervision_losses, lambda: [inverse_losses.InverseHarmonicConsistencyLoss()],
            "harmonic_supervision_losses")

    # ------------------------------------------------------------------ forward
    def synthesize(self, sin_amps, sin_freqs, noise_magnitudes) -> tf.Tensor:
        """Audio `[batch, n_samples]` of sinusoids (linear amps, Hz) plus filtered noise."""
        outputs = self.processor_group({"sin_amps": sin_amps, "sin_freqs": sin_freqs,
                                        "noise_magnitudes": noise_magnitudes}, return_outputs_dict=True)
        return outputs["out/signal"]

    def forward(self, audio, training=False) -> dict:
        """Both branches on `[batch, n_samples]` audio -> dict of OUTPUT_KEYS (batch first)."""
        audio = core.ensure_audio(audio, "audio")
        if audio.shape[1] is not None and audio.shape[1] != self.n_samples:
            raise ValueError(f"InverseSynthesis: features['audio'] has {audio.shape[1]} samples, but the "
                             f"model synthesizes n_samples={self.n_samples}.")
        outputs = dict(self.sinusoidal_encoder(audio, training=training))
        missing = [k for k in ("sin_amps", "sin_freqs", "noise_magnitudes") if k not in outputs]
        if missing:
            raise ValueError(f"InverseSynthesis: the sinusoidal_encoder returned no {missing}.")
        outputs["sin_audio"] = self.synthesize(outputs["sin_amps"], outputs["sin_freqs"],
                                               outputs["noise_magnitudes"])
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
        return outputs

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

    def call(self, features, training=False):
        """Outputs (see module doc); with `compute_losses`, the losses of each mode."""
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
        start = 0
        for (name, part), audio in zip(parts.items(), audios):
            size = audio.shape[0] if audio.shape[0] is not None else tf.shape(audio)[0]
            part_outputs = {key: value[start:start + size] for key, value in outputs.items()}
            start += size
            if self.compute_losses:
                self._add_losses(part, part_outputs, prefix=f"{name}/")
            outputs.update({f"{name}/{key}": value for key, value in part_outputs.items()})
        return outputs

    # ------------------------------------------------------------------ losses
    def _add_losses(self, features, outputs, prefix: str):
        """Adds one batch's (or zipped part's) losses, names prefixed by `prefix` and the
        branch (``sin_`` / ``harm_``)."""
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
        if "sin_amps" not in features:
            return
        true = self.true_controls(features, outputs["sin_amps"].shape[1], prefix)
        self._update_losses_dict(self.sinusoid_supervision_losses, outputs["sin_amps"],
                                 outputs["sin_freqs"], true["sin_amps"], true["sin_freqs"],
                                 prefix=sin)
        self._update_losses_dict(self.noise_supervision_losses, outputs["noise_magnitudes"],
                                 true["noise_magnitudes"], prefix=sin)
        if harmonic:
            self._update_losses_dict(self.harmonic_supervision_losses, outputs["harm_amp"],
                                     true["harm_amp"], outputs["harm_dist"], true["harm_dist"],
                                     outputs["f0_hz"], true["f0_hz"], prefix=harm)

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
