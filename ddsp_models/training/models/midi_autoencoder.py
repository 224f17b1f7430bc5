"""MidiAutoencoder and ZMidiAutoencoder: two stacked autoencoders with a MIDI latent layer.

Inner (synthcoder) branch: f0 and loudness (or power) [+ z] -> `synthcoder` -> synthesizer
controls -> Harmonic + FilteredNoise (+ FilteredNoiseReverb) -> `synth_audio`.

Outer (MIDI) branch: the synthcoder's controls (log-scaled amplitude and noise, harmonic
distribution, f0 in MIDI) -> `midi_encoder` -> per-frame MIDI (`z_pitch` continuous,
`q_pitch`, `q_vel` straight-through quantised); or, without a midi_encoder, the ground-truth
MIDI of the note features -> `midi_decoder` -> controls and f0 -> the same synthesizer ->
`midi_audio`.

Frame tensors are `[batch, n_frames, channels]`; audio `[batch, n_samples]`; pitch in MIDI
note numbers, velocity in MIDI units (0-127). The log-scaled amplitudes (`control_scale`):
'db', as the original DDSP, `core.amplitude_to_db` (20 log10 a, floored at -80 dB); 'unit',
this package's 20 log10(a + 1e-4) / 80 + 1 (about -80 dB -> 0, 0 dB -> 1; smooth, so a quiet
control's gradient does not vanish at the floor).
"""
import tensorflow as tf

from ddsp_models import core, effects, processors, synths
from ddsp_models.gin_utils import register
from ddsp_models.training import features as feature_contract
from ddsp_models.training import midi, nn
from ddsp_models.training.features import N_PITCHES, NOTE_ACTIVE, NOTE_VELOCITIES
from ddsp_models.training.models.model import Model, add_original_layout, preprocess_and_encode
from ddsp_models.training.preprocessing import scale_db

AMP_FLOOR = 1e-4  # -80 dB
# How the synth controls are log-scaled for the MIDI branch and the losses (see the module doc).
CONTROL_SCALES = ("db", "unit")


def log_scale(amplitude):
    """Linear amplitude -> 20 log10(a + 1e-4) / 80 + 1 (about [0, 1]; smooth, so its gradient
    does not vanish for quiet controls)."""
    return scale_db(20.0 * core.log10(core.tf_float32(amplitude, "amplitude") + AMP_FLOOR))


def scale_control(amplitude, control_scale: str = "db"):
    """A linear amplitude control (any shape) log-scaled: 'db' -> `core.amplitude_to_db`
    (dB, floored at -80, as the original DDSP); 'unit' -> `log_scale` (about [0, 1])."""
    if control_scale == "db":
        return core.amplitude_to_db(amplitude)
    if control_scale == "unit":
        return log_scale(amplitude)
    raise ValueError(f"control_scale must be one of {CONTROL_SCALES}, got {control_scale!r}")


def build_processor_group(reverb: bool = False) -> processors.ProcessorGroup:
    """Harmonic + FilteredNoise -> Add (-> trainable FilteredNoiseReverb when `reverb`).

    Inputs: 'amps' `[batch, n_frames, 1]`, 'harmonic_distribution', 'noise_magnitudes' (raw
    network outputs) and 'f0_hz' `[batch, n_frames, 1]`. Sizes come from gin bindings of the
    synths (`Harmonic.n_samples`, ...).
    """
    dag = [(synths.Harmonic(name="harmonic"), ["amps", "harmonic_distribution", "f0_hz"]),
           (synths.FilteredNoise(name="filtered_noise"), ["noise_magnitudes"]),
           (processors.Add(name="add"), ["filtered_noise/signal", "harmonic/signal"])]
    if reverb:
        dag.append((effects.FilteredNoiseReverb(trainable=True, name="reverb"), ["add/signal"]))
    return processors.ProcessorGroup(dag=dag, name="processor_group")


def _as_list(value) -> list:
    """None -> []; a list/tuple -> list; anything else -> [value]."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


# The original DDSP's control names -> this package's (either is accepted).
CONTROL_ALIASES = {"amps": "amplitudes", "noise_magnitudes": "magnitudes"}


def _control(params: dict, key: str, owner: str):
    """`params[key]`, or the original's name for it; ValueError naming both when absent."""
    for name in (key, CONTROL_ALIASES.get(key)):
        if name is not None and name in params:
            return params[name]
    raise ValueError(f"{owner}: the decoder outputs need '{key}'"
                     + (f" (or '{CONTROL_ALIASES[key]}')" if key in CONTROL_ALIASES else "")
                     + f"; they hold {sorted(params)}")


def _weighted(loss_class, weight: float, **kwargs):
    """``loss_class(weight, **kwargs)``, or None when `weight` is 0 (the loss is off)."""
    return loss_class(weight=weight, **kwargs) if weight > 0.0 else None


@register("models")
class MidiAutoencoder(Model):
    """Audio features -> synth controls -> MIDI -> synth controls -> audio.

    Args (the original's first, in its order):
      synthcoder: decoder (e.g. `RnnFcDecoder`) -> {'amps', 'harmonic_distribution',
        'noise_magnitudes'} (raw, pre-scale_fn; the original's names 'amplitudes',
        'magnitudes' work too).
      midi_encoder: `HarmonicToMidiEncoder`-like layer ({'f0_midi', 'amps', 'hd', 'noise'}
        -> {'z_pitch', 'q_pitch', 'q_vel'}); None: use the ground-truth MIDI of the note
        features `note_active_velocities` * `note_active_frame_indices` `[batch, n_frames, 128]`.
      midi_decoder: `MidiToHarmonicDecoder`-like layer, {'pitch', 'velocity'[, 'z']} -> the
        same controls plus 'f0_midi' and 'f0_hz'.
      sg_before_midiae: the MIDI encoder reads the synthcoder's controls (and f0) through a
        stop-gradient, so transcribing does not train the synthcoder (the original's).
      reverb: add a trainable FilteredNoiseReverb after the synths.
      preprocessor: features -> {'f0_hz', 'f0_scaled', 'ld_scaled' | 'pw_scaled', ...}.
      reconstruction_losses: a loss (e.g. a `LossGroup`) or list of losses called with the
        outputs dict.
      qpitch_f0rec_loss: loss object on |q_pitch - f0_midi_pred| (one argument, e.g.
        `losses.MarginLoss`), the decoder's f0 against the MIDI pitch (with or without a
        midi_encoder), as the original applies it.
      pitch_f0rec_loss: loss object on |z_pitch - f0_midi_pred| (midi_encoder only).
      pitch_qpitch_loss: loss object called (z_pitch, q_pitch) (midi_encoder only).
      midi_slowness_loss: loss object called (z_pitch, q_pitch, q_vel), e.g.
        `losses.SlownessLoss` (midi_encoder only).
      mask_f0_loss: f0 loss weights ('f0_loss_weights') 0 where |f0_midi - pitch| >=
        f0_mask_semitones (else all 1).
    This package's own (keyword) arguments:
      control_scale: how 'amps', 'noise' (the midi_encoder's inputs and the loss targets)
        and 'amps_pred', 'noise_pred' are log-scaled: 'db' (the original's dB, default) or
        'unit' (this package's [0, 1] scale; its models/midiae/*.gin bind it).
      use_velocity: hand the note velocities to the midi_decoder as 'q_vel'. False (the
        original's default): 'q_vel' is zero, as the original zeroes the ground-truth and
        encoded velocities (its decoder reads only the pitch); the velocities still make
        'pianoroll' and mark the notes (note latents, slowness loss).
      encoder: optional layer adding 'z' (synthcoder input) from the features.
      processor_group: overrides the built-in synthesizer (same input keys).
      losses: more loss objects called with the outputs dict.
      stop_gradient: this package's name of `sg_before_midiae` (wins when given).
      stop_gradient_controls: with `sg_before_midiae`, also stop the gradient of the
        controls in the outputs ('amps', 'hd', 'noise', which the parameter losses compare
        with the MIDI branch's and the note encoder reads), so that no MIDI-branch loss
        trains the synthcoder. False (the original's): the parameter losses pull both
        branches. This package's models/midiae/*.gin bind True.
      f0_audio_gradient: let the audio losses on `midi_audio` train the midi_decoder's f0
        (off by default: the gradient of a spectral loss with respect to a harmonic
        oscillator's f0 goes through the accumulated phase; measured on a fresh model it is
        about 2000x the f0 loss's and of no useful sign, and it drove the residual to its
        bound). Off, only the (masked) f0 loss trains f0, as in InverseSynthesis.
      f0_mask_semitones: see mask_f0_loss.
      hold_pitch: the midi_decoder's pitch is held through the frames between notes
        (`midi.hold_pitch`: the last note's pitch, with velocity 0), so that it can learn the
        release tails of the audio at the note's pitch; the f0 loss and its mask use that
        pitch too ('decoder_pitch'). False (the original's): pitch 0 between notes, where
        the decoder's f0 is about 8 Hz and a recorded release tail cannot be matched.
        'q_pitch' and 'pianoroll' are unchanged. This package's models/midiae/*.gin bind True.
      pitch_weight, pitch_margin: a MarginLoss 'pitch_loss' on (z_pitch, f0_midi).
      pitch_qt_weight, pitch_qt_margin: a MarginLoss 'pitch_qt_loss' on (q_pitch, f0_midi).
      pitch_q_weight: a MarginLoss (margin 0) 'pitch_q_loss' on (z_pitch, sg(q_pitch)).
      slowness_weight, min_note_length, max_notes: a SlownessLoss 'slowness_loss'.
    These four (this package's formulation: against the synthcoder's f0, f0 and q_pitch as
    targets without gradient) apply with a midi_encoder and a weight > 0 (0 by default:
    models/midiae/mixins/midi_encoder.gin binds them); a loss object given in the original's
    argument of the same role replaces the weighted one.
    """

    def __init__(self, synthcoder=None, midi_encoder=None, midi_decoder=None, sg_before_midiae: bool = True,
                 reverb: bool = True, preprocessor=None, reconstruction_losses=None, qpitch_f0rec_loss=None,
                 pitch_f0rec_loss=None, pitch_qpitch_loss=None, midi_slowness_loss=None, mask_f0_loss: bool = True,
                 encoder=None, processor_group=None, losses=None, stop_gradient: bool | None = None,
                 f0_audio_gradient: bool = False, f0_mask_semitones: float = 2.0, pitch_weight: float = 0.0,
                 pitch_margin: float = 0.5, pitch_qt_weight: float = 0.0, pitch_qt_margin: float = 1.0,
                 pitch_q_weight: float = 0.0, slowness_weight: float = 0.0, min_note_length: int = 8,
                 max_notes: int = 64, control_scale: str = "db", use_velocity: bool = False,
                 stop_gradient_controls: bool = False, hold_pitch: bool = False, **kwargs):
        super().__init__(**kwargs)
        if control_scale not in CONTROL_SCALES:
            raise ValueError(f"{type(self).__name__}: control_scale must be one of {CONTROL_SCALES}, "
                             f"got {control_scale!r}")
        self.control_scale = control_scale
        self.use_velocity = bool(use_velocity)
        self.hold_pitch = bool(hold_pitch)
        if stop_gradient is None:
            stop_gradient = sg_before_midiae
        if reconstruction_losses is not None:
            losses = _as_list(reconstruction_losses) + _as_list(losses)
        if synthcoder is None:
            raise ValueError(f"{type(self).__name__}: synthcoder is required")
        if midi_decoder is None:
            raise ValueError(f"{type(self).__name__}: midi_decoder is required")
        self.preprocessor = preprocessor
        self.encoder = encoder
        self.synthcoder = synthcoder
        self.midi_decoder = midi_decoder
        self.midi_encoder = midi_encoder
        self.reverb = bool(reverb)
        self.processor_group = processor_group if processor_group is not None else build_processor_group(reverb)
        self.loss_objs = _as_list(losses)
        self.stop_gradient = bool(stop_gradient)
        self.stop_gradient_controls = bool(stop_gradient_controls)
        self.mask_f0_loss = bool(mask_f0_loss)
        self.f0_audio_gradient = bool(f0_audio_gradient)
        self.f0_mask_semitones = float(f0_mask_semitones)
        self.pitch_weight, self.pitch_margin = float(pitch_weight), float(pitch_margin)
        self.pitch_qt_weight, self.pitch_qt_margin = float(pitch_qt_weight), float(pitch_qt_margin)
        self.pitch_q_weight, self.slowness_weight = float(pitch_q_weight), float(slowness_weight)
        self.min_note_length, self.max_notes = int(min_note_length), int(max_notes)
        # The original's loss objects (applied as it applies them), else this package's weighted
        # ones (None: weight 0, not computed).
        self.original_losses = {key: loss for key, loss in (
            ("qpitch_f0rec_loss", qpitch_f0rec_loss), ("pitch_f0rec_loss", pitch_f0rec_loss),
            ("pitch_qpitch_loss", pitch_qpitch_loss), ("midi_slowness_loss", midi_slowness_loss))
            if loss is not None}
        self.pitch_f0rec_loss = pitch_f0rec_loss or _weighted(midi.MarginLoss, self.pitch_weight,
                                                              margin=self.pitch_margin, name="pitch_loss")
        self.qpitch_f0rec_loss = qpitch_f0rec_loss or _weighted(midi.MarginLoss, self.pitch_qt_weight,
                                                                margin=self.pitch_qt_margin, name="pitch_qt_loss")
        self.pitch_qpitch_loss = pitch_qpitch_loss or _weighted(midi.MarginLoss, self.pitch_q_weight, margin=0.0,
                                                                name="pitch_q_loss")
        self.midi_slowness_loss = midi_slowness_loss or _weighted(
            midi.SlownessLoss, self.slowness_weight, min_note_length=self.min_note_length,
            max_notes=self.max_notes, name="slowness_loss")

    # ------------------------------------------------------------------ MIDI <-> rolls
    @staticmethod
    def pianoroll_to_midi(pianoroll):
        """`[batch, n_frames, 128]` -> (pitch, velocity) `[batch, n_frames, 1]` (see `midi`)."""
        return midi.pianoroll_to_midi(pianoroll)

    @staticmethod
    def midi_to_pianoroll(q_pitch, q_vel, piano_keys: int = 128, thresh: float = 20.0):
        """The original's roll: one-hot of the pitch `[batch, n_frames, piano_keys]`, pitches
        <= thresh at key 0, velocity ignored (`midi.midi_to_pianoroll`). The model's output
        'pianoroll' is this package's `midi.velocity_pianoroll` (its note metrics and plots
        read the velocities and a silent frame as no note)."""
        return midi.midi_to_pianoroll(q_pitch, q_vel, piano_keys, thresh)

    def ground_truth_pianoroll(self, features, n_frames: int):
        """note_active_velocities * (note_active_frame_indices > 0), `[batch, n_frames, 128]`."""
        for key in (NOTE_VELOCITIES, NOTE_ACTIVE):
            if key not in features:
                raise ValueError(f"{type(self).__name__}: without a midi_encoder the features need '{key}' "
                                 f"[batch, n_frames, 128] (have {sorted(features)})")
        roll = feature_contract.reference_pianoroll(
            {key: core.tf_float32(features[key], key) for key in (NOTE_VELOCITIES, NOTE_ACTIVE)})
        if roll.shape.rank != 3:
            raise ValueError(f"note features must be [batch, n_frames, {N_PITCHES}], got {roll.shape}")
        if roll.shape[1] != n_frames:
            roll = core.resample(roll, n_frames, method="nearest")
        return roll

    # ------------------------------------------------------------------ branches
    def encode(self, features, training=True):
        """Preprocessor features (and the encoder's 'z') added to a copy of `features`."""
        features = preprocess_and_encode(self.preprocessor, self.encoder, features, training)
        if "f0_hz" not in features:
            raise ValueError(f"{type(self).__name__}: the features (after preprocessing) need 'f0_hz'")
        features["f0_hz"] = core.ensure_3d(features["f0_hz"], "f0_hz")
        return features

    def synthesize(self, params, f0_hz):
        """(audio `[batch, n_samples]`, processor outputs dict) from raw controls and f0 (Hz)."""
        owner = type(self).__name__
        dag_inputs = {key: _control(params, key, owner)
                      for key in ("amps", "harmonic_distribution", "noise_magnitudes")}
        dag_inputs["f0_hz"] = f0_hz
        processor_outputs = self.processor_group(dag_inputs, return_outputs_dict=True)
        return processor_outputs["out/signal"], processor_outputs

    def scaled_controls(self, processor_outputs):
        """(log-scaled amplitude, harmonic distribution, log-scaled noise) of a synth pass
        (scaled as `control_scale` says)."""
        return (scale_control(processor_outputs["harmonic/controls/amplitudes"], self.control_scale),
                processor_outputs["harmonic/controls/harmonic_distribution"],
                scale_control(processor_outputs["filtered_noise/controls/magnitudes"], self.control_scale))

    def midi_z(self, outputs, pitch, velocity, training=False):
        """Latent for the midi_decoder (`[batch, n_frames, n]`) or None. Subclasses add one.
        `velocity`: the notes' velocities (never zeroed; > 0 where a note sounds)."""
        return None

    def call(self, features, training=False):
        """Outputs: the features, 'synth_audio', 'midi_audio', the MIDI and control tensors;
        the synth passes' processor outputs flat ('harmonic/signal', ...; 'midi/harmonic/signal',
        ... for the MIDI pass) and, as the original DDSP returns them, nested (the same
        tensors): 'synth_params' and 'midi_synth_params' (`ProcessorGroup.get_controls`'
        layout of each pass), and the synthcoder pass's at the top level
        (`outputs['harmonic']['controls']['amplitudes']`, `outputs['out']['signal']`, ...,
        never replacing a key of ours)."""
        outputs = self.encode(features, training=training)
        f0_hz = outputs["f0_hz"]
        n_frames = f0_hz.shape[1]

        # Inner branch.
        synth_params = self.synthcoder(outputs, training=training)
        for key, value in synth_params.items():
            outputs[f"synthcoder/{key}"] = value
        synth_audio, synth_processed = self.synthesize(synth_params, f0_hz)
        f0_midi = core.hz_to_midi(f0_hz)
        amps, hd, noise = self.scaled_controls(synth_processed)
        if self.stop_gradient and self.stop_gradient_controls:
            amps, hd, noise = (tf.stop_gradient(x) for x in (amps, hd, noise))
        outputs.update(synth_audio=synth_audio, f0_midi=f0_midi, amps=amps, hd=hd, noise=noise,
                       amps_scaled=amps, hd_scaled=hd, noise_scaled=noise)  # the original's names

        # MIDI.
        if self.midi_encoder is not None:
            encoder_inputs = {"f0_midi": f0_midi, "amps": amps, "hd": hd, "noise": noise}
            if self.stop_gradient:
                encoder_inputs = {k: tf.stop_gradient(v) for k, v in encoder_inputs.items()}
            encoded = self.midi_encoder(encoder_inputs, training=training)
            z_pitch, pitch, velocity = encoded["z_pitch"], encoded["q_pitch"], encoded["q_vel"]
            pianoroll = midi.velocity_pianoroll(pitch, velocity)
        else:
            pianoroll = self.ground_truth_pianoroll(features, n_frames)
            pitch, velocity = midi.pianoroll_to_midi(pianoroll)
            z_pitch = pitch
        note_velocity = velocity  # marks the notes, whether or not the decoder hears it
        if not self.use_velocity:
            velocity = tf.zeros_like(velocity)  # the original: "don't use velocities for now"
        outputs.update(z_pitch=z_pitch, q_pitch=pitch, q_vel=velocity, pianoroll=pianoroll,
                       note_velocity=note_velocity)

        # Outer branch.
        decoder_pitch = midi.hold_pitch(pitch, note_velocity) if self.hold_pitch else pitch
        outputs["decoder_pitch"] = decoder_pitch
        midi_inputs = {"pitch": decoder_pitch, "velocity": velocity}
        z = self.midi_z(outputs, pitch, note_velocity, training=training)
        if z is not None:
            midi_inputs["z"] = z
        midi_params = self.midi_decoder(midi_inputs, training=training)
        for key, value in midi_params.items():
            outputs[f"midi_decoder/{key}"] = value
        midi_f0_hz = midi_params["f0_hz"] if self.f0_audio_gradient else tf.stop_gradient(midi_params["f0_hz"])
        midi_audio, midi_processed = self.synthesize(midi_params, midi_f0_hz)
        amps_pred, hd_pred, noise_pred = self.scaled_controls(midi_processed)
        f0_loss_weights = (tf.cast(tf.abs(f0_midi - decoder_pitch) < self.f0_mask_semitones, tf.float32)
                           if self.mask_f0_loss else tf.ones_like(f0_midi))
        outputs.update(midi_audio=midi_audio, f0_midi_pred=midi_params["f0_midi"], f0_hz_pred=midi_params["f0_hz"],
                       amps_pred=amps_pred, hd_pred=hd_pred, noise_pred=noise_pred,
                       f0_loss_weights=tf.stop_gradient(f0_loss_weights))
        for key, value in midi_processed.items():
            outputs[f"midi/{key}"] = value
        for key, value in synth_processed.items():
            if key not in outputs:
                outputs[key] = value
        # The original's nested layout of both synth passes (the same tensors).
        synth_nested = self.processor_group.nested_outputs(synth_processed)
        outputs["synth_params"] = synth_nested
        outputs["midi_synth_params"] = self.processor_group.nested_outputs(midi_processed)
        add_original_layout(outputs, synth_nested)

        if self.compute_losses:
            if "audio" not in outputs and self.loss_objs:
                raise ValueError(f"{type(self).__name__}: losses need features['audio'] (the target audio)")
            self._update_losses_dict(self.loss_objs, outputs)
            self._add_pitch_losses(outputs)
        return outputs

    def _add_pitch_losses(self, outputs):
        """The MIDI losses. The original's loss objects as it applies them (see the class
        doc); this package's: z_pitch and q_pitch near f0 (margin losses), z_pitch near
        q_pitch, a steady z_pitch within short notes, f0 and q_pitch (as a target) without
        gradient; all but the original's qpitch_f0rec_loss need a midi_encoder."""
        original = self.original_losses
        z_pitch, q_pitch, f0_pred = outputs["z_pitch"], outputs["q_pitch"], outputs["f0_midi_pred"]
        if "qpitch_f0rec_loss" in original:
            self._update_losses_dict(self.qpitch_f0rec_loss, tf.abs(q_pitch - f0_pred))
        if self.midi_encoder is None:
            return
        f0_midi = tf.stop_gradient(outputs["f0_midi"])
        if "pitch_f0rec_loss" in original:
            self._update_losses_dict(self.pitch_f0rec_loss, tf.abs(z_pitch - f0_pred))
        else:
            self._update_losses_dict(self.pitch_f0rec_loss, z_pitch, f0_midi)
        if "qpitch_f0rec_loss" not in original:
            self._update_losses_dict(self.qpitch_f0rec_loss, q_pitch, f0_midi)
        if "pitch_qpitch_loss" in original:
            self._update_losses_dict(self.pitch_qpitch_loss, z_pitch, q_pitch)
        else:
            self._update_losses_dict(self.pitch_qpitch_loss, z_pitch, tf.stop_gradient(q_pitch))
        self._update_losses_dict(self.midi_slowness_loss, z_pitch, q_pitch, outputs["note_velocity"])

    def get_audio_from_outputs(self, outputs):
        """`outputs['midi_audio']` `[batch, n_samples]` (the audio resynthesised from MIDI)."""
        return outputs["midi_audio"]


@register("models")
class ZMidiAutoencoder(MidiAutoencoder):
    """MidiAutoencoder with latents at three levels.

    Args (after MidiAutoencoder's original ones, which it takes in the original's order;
    its other arguments by keyword):
      z_synth_encoders: layers (features -> `[batch, n_frames, n]` or `[batch, n]` (tiled),
        or a dict with 'z'), concatenated into the synthcoder's 'z'.
      z_global_encoders: layers whose outputs are concatenated into the global latent
        'z_global': as the original, per frame (`[batch, n]` outputs tiled over the
        frames, `[batch, m, n]` resampled to them); with this package's `global_prior`,
        per example (each output averaged over time, `[batch, n]`).
      z_note_encoder: layer -> `[batch, n_frames, n]`, pooled over each note of the MIDI.
        As the original: the regions of `nn.get_note_mask(q_pitch)` (a region per pitch
        change, silences masked, 100 regions) and `nn.pool_over_notes`, a per-frame (mean,
        std) pair; the prior object samples from it, else (the original fails there: it
        concatenates the pair) the mean is the latent. With this package's `note_prior`:
        `midi.get_note_mask` notes (`max_notes`) and their means.
      z_preconditioning_stack: layer applied to concat(global, note latents) per frame
        (e.g. `nn.FcStackOut`); its output is the midi_decoder's 'z' ('z_midi').
      z_global_prior, z_note_prior: the original's prior objects (e.g.
        `losses.GaussianPrior`): the model adds ``prior.get_losses_dict(z)`` to its losses,
        then replaces the latent by ``prior(z)`` (a sample, in training and evaluation
        alike). None (the original's default): no prior.
      global_prior, note_prior: this package's priors (its models/midiae/z_midiae.gin binds
        them; off by default): the parameters are [mean, log-variance] halves of a
        Gaussian: sampled (reparameterised; the mean when not training) with the KL to
        N(0, 1) (summed over latent channels, averaged over examples / notes) times
        `kl_weight` as 'kl_global_loss' / 'kl_note_loss'. Not together with the original's
        prior object of the same latent.
    Outputs add 'z_global', 'z_notes' (per frame), 'note_mask' and 'z_midi'.
    """

    def __init__(self, synthcoder=None, midi_encoder=None, midi_decoder=None, sg_before_midiae: bool = True,
                 reverb: bool = True, preprocessor=None, reconstruction_losses=None, qpitch_f0rec_loss=None,
                 pitch_f0rec_loss=None, pitch_qpitch_loss=None, midi_slowness_loss=None, mask_f0_loss: bool = True,
                 z_synth_encoders=None, z_global_encoders=None, z_note_encoder=None, z_preconditioning_stack=None,
                 z_global_prior=None, z_note_prior=None, global_prior: bool = False, note_prior: bool = False,
                 kl_weight: float = 1e-3, **kwargs):
        super().__init__(synthcoder=synthcoder, midi_encoder=midi_encoder, midi_decoder=midi_decoder,
                         sg_before_midiae=sg_before_midiae, reverb=reverb, preprocessor=preprocessor,
                         reconstruction_losses=reconstruction_losses, qpitch_f0rec_loss=qpitch_f0rec_loss,
                         pitch_f0rec_loss=pitch_f0rec_loss, pitch_qpitch_loss=pitch_qpitch_loss,
                         midi_slowness_loss=midi_slowness_loss, mask_f0_loss=mask_f0_loss, **kwargs)
        for ours, theirs, prior in (("global_prior", "z_global_prior", z_global_prior),
                                    ("note_prior", "z_note_prior", z_note_prior)):
            if prior is not None and (global_prior if ours == "global_prior" else note_prior):
                raise ValueError(f"ZMidiAutoencoder: give either the original's {theirs} object or this "
                                 f"package's {ours}=True, not both")
        self._z_synth_names = self._set_list("z_synth_encoder", z_synth_encoders)
        self._z_global_names = self._set_list("z_global_encoder", z_global_encoders)
        self.z_note_encoder = z_note_encoder
        self.z_preconditioning_stack = z_preconditioning_stack
        self.global_prior, self.note_prior = bool(global_prior), bool(note_prior)
        self.z_global_prior, self.z_note_prior = z_global_prior, z_note_prior
        self.kl_weight = float(kl_weight)
        self.kl_global_loss = _weighted(midi.GaussianKLLoss, self.kl_weight if self.global_prior else 0.0,
                                        name="kl_global_loss")
        self.kl_note_loss = _weighted(midi.GaussianKLLoss, self.kl_weight if self.note_prior else 0.0,
                                      name="kl_note_loss")

    def _set_list(self, prefix, layers):
        if layers is None:
            return []
        layers = layers if isinstance(layers, (list, tuple)) else [layers]
        names = []
        for index, layer in enumerate(layers):
            setattr(self, f"{prefix}_{index}", layer)
            names.append(f"{prefix}_{index}")
        return names

    @property
    def z_synth_encoders(self):
        return [getattr(self, name) for name in self._z_synth_names]

    @property
    def z_global_encoders(self):
        return [getattr(self, name) for name in self._z_global_names]

    @staticmethod
    def _as_z(value):
        return value["z"] if isinstance(value, dict) else value

    @staticmethod
    def per_frame(z, n_frames: int):
        """`[batch, n]` tiled, or `[batch, m, n]` linearly resampled, to `[batch, n_frames, n]`."""
        if z.shape.rank == 2:
            return tf.tile(z[:, tf.newaxis, :], [1, n_frames, 1])
        return z if z.shape[1] == n_frames else core.resample(z, n_frames)

    def encode(self, features, training=True):
        features = super().encode(features, training=training)
        if self.z_synth_encoders:
            n_frames = features["f0_hz"].shape[1]
            features["z"] = tf.concat(
                [self.per_frame(core.tf_float32(self._as_z(encoder(features, training=training)), "z_synth"),
                                 n_frames) for encoder in self.z_synth_encoders], axis=-1)
        return features

    @staticmethod
    def split_prior(params):
        """`[..., 2n]` -> (mean, log_var) `[..., n]` each."""
        if params.shape[-1] % 2:
            raise ValueError(f"a Gaussian prior needs an even number of latent parameters, got {params.shape}")
        return tf.split(params, 2, axis=-1)

    def _apply_prior(self, prior, z):
        """The original's prior object: its losses, then its sample."""
        self._update_losses_dict(prior, z)
        return prior(z)

    def z_global_encode(self, outputs, n_frames: int, training=False):
        """The global latent `[batch, n_frames, n]` (see the class doc), or None."""
        zs = [core.tf_float32(self._as_z(encoder(outputs, training=training)), "z_global")
              for encoder in self.z_global_encoders]
        if not zs:
            return None
        if self.global_prior:  # this package's: a Gaussian per example
            z_global = tf.concat([tf.reduce_mean(z, axis=1) if z.shape.rank == 3 else z for z in zs], axis=-1)
            mean, log_var = self.split_prior(z_global)
            z_global = midi.gaussian_sample(mean, log_var, training)
            if self.compute_losses:
                self._update_losses_dict(self.kl_global_loss, mean, log_var)
            outputs["z_global"] = z_global
            return self.per_frame(z_global, n_frames)
        z_global = tf.concat([self.per_frame(z, n_frames) for z in zs], axis=-1)
        if self.z_global_prior is not None:
            z_global = self._apply_prior(self.z_global_prior, z_global)
        outputs["z_global"] = z_global
        return z_global

    def z_note_encode(self, outputs, pitch, velocity, training=False):
        """The note latent `[batch, n_frames, n]` (see the class doc), or None."""
        if self.z_note_encoder is None:
            return None
        frames = core.tf_float32(self._as_z(self.z_note_encoder(outputs, training=training)), "z_note")
        if self.note_prior:  # this package's notes and Gaussian
            note_pitch = tf.stop_gradient(pitch * tf.cast(velocity > 0.0, tf.float32))
            note_mask = midi.get_note_mask(note_pitch, self.max_notes)
            note_params, _ = midi.get_note_moments(frames, note_mask)  # [batch, notes, n]
            mean, log_var = self.split_prior(note_params)
            note_z = midi.gaussian_sample(mean, log_var, training)
            if self.compute_losses:
                present = tf.cast(midi.get_note_lengths(note_mask) > 0.0, tf.float32)
                self._update_losses_dict(self.kl_note_loss, mean, log_var, present=present)
            z_notes = tf.einsum("btn,bnc->btc", note_mask, note_z)
        else:  # the original's regions and pooling
            note_mask = nn.get_note_mask(tf.stop_gradient(pitch))
            pooled = nn.pool_over_notes(frames, note_mask)  # (mean, std) per frame
            z_notes = pooled[0] if self.z_note_prior is None else self._apply_prior(self.z_note_prior, pooled)
        outputs.update(z_notes=z_notes, note_mask=note_mask)
        return z_notes

    def midi_z(self, outputs, pitch, velocity, training=False):
        n_frames = pitch.shape[1]
        parts = [z for z in (self.z_global_encode(outputs, n_frames, training),
                             self.z_note_encode(outputs, pitch, velocity, training)) if z is not None]
        if not parts:
            return None
        z = tf.concat(parts, axis=-1)
        if self.z_preconditioning_stack is not None:
            z = self.z_preconditioning_stack(z)
        outputs["z_midi"] = z
        return z
