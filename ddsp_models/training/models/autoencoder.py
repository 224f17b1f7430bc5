"""Autoencoder: features -> (preprocess, encode) -> decode -> synthesize -> losses."""
import tensorflow as tf

from ddsp_models.gin_utils import register
from ddsp_models.training.models.model import Model, add_original_layout, preprocess_and_encode

SIGNAL_KEYS = ("out/signal", "signal")


@register("models")
class Autoencoder(Model):
    """The DDSP autoencoder (Engel et al., ICLR 2020).

    ``preprocessor`` turns raw features (``f0_hz``, ``loudness_db`` ``[batch, n_frames]``)
    into network inputs (``f0_scaled``, ``ld_scaled`` ``[batch, time_steps, 1]``);
    ``encoder`` (optional) adds a latent ``z`` from the audio; ``decoder`` maps them to
    synthesizer controls (``amps``, ``harmonic_distribution``, ``noise_magnitudes``);
    ``processor_group`` renders audio ``[batch, n_samples]`` from the controls; ``losses``
    compare it with ``features['audio']``.

    Args:
      preprocessor: layer, features dict -> dict of new features (or None).
      encoder: layer, features dict -> ``{'z': ...}`` or a tensor (taken as ``z``); or None.
      decoder: layer, features dict -> dict of controls.
      processor_group: `ProcessorGroup`, controls dict -> audio.
      losses: list of loss layers with ``get_losses_dict(target_audio, audio)``.
    """

    def __init__(self, preprocessor=None, encoder=None, decoder=None, processor_group=None,
                 losses=None, **kwargs):
        super().__init__(**kwargs)
        if decoder is None:
            raise ValueError("Autoencoder: decoder is required")
        if processor_group is None:
            raise ValueError("Autoencoder: processor_group is required")
        self.preprocessor = preprocessor
        self.encoder = encoder
        self.decoder = decoder
        self.processor_group = processor_group
        if losses is not None and not isinstance(losses, (list, tuple)):
            losses = [losses]
        self.loss_objs = list(losses or [])

    def encode(self, features, training=True):
        """Adds the preprocessor's features and the encoder's ``z`` to a copy of `features`."""
        return preprocess_and_encode(self.preprocessor, self.encoder, features, training)

    def decode(self, features, training=True):
        """Decoder controls -> synthesized audio ``[batch, n_samples]``."""
        features = dict(features)
        features.update(self.decoder(features, training=training))
        return self.processor_group(features)

    def call(self, features, training=False):
        """Returns every feature, decoder control, processor output and ``audio_synth``.

        Processor outputs come flat (``'harmonic/signal'``, ``'harmonic/controls/amplitudes'``,
        ``'out/signal'``) and, as the original DDSP returns them, nested
        (``outputs['harmonic']['signal']``, ``outputs['out']['signal']``, ``outputs['inputs']``
        = the processor group's input dict): the same tensors.
        """
        outputs = self.encode(features, training=training)
        outputs.update(self.decoder(outputs, training=training))
        dag_inputs = dict(outputs)
        processor_outputs = self.processor_group(dag_inputs, return_outputs_dict=True)
        outputs.update(processor_outputs)
        outputs["audio_synth"] = _signal_from(processor_outputs)
        if hasattr(self.processor_group, "nested_outputs") and isinstance(processor_outputs, dict):
            add_original_layout(outputs, self.processor_group.nested_outputs(processor_outputs, dag_inputs))
        if self.compute_losses:
            if "audio" not in features:
                raise ValueError("Autoencoder: losses need features['audio'] (the target audio)")
            self._update_losses_dict(self.loss_objs, features["audio"], outputs["audio_synth"])
        return outputs

    def get_audio_from_outputs(self, outputs):
        """``outputs['audio_synth']``: ``[batch, n_samples]``."""
        return outputs["audio_synth"]


def _signal_from(processor_outputs):
    if not isinstance(processor_outputs, dict):
        return tf.convert_to_tensor(processor_outputs)
    for key in SIGNAL_KEYS:
        if key in processor_outputs:
            return processor_outputs[key]
    raise ValueError("processor_group(..., return_outputs_dict=True) returned no 'out/signal' "
                     f"(keys: {sorted(processor_outputs)})")
