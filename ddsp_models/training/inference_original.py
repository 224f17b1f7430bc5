"""The original DDSP's ``training.inference`` names: `parse_operative_config` and
`AutoencoderInference` (re-exported by `ddsp_models.training.inference`).

Both read run folders of this project and model folders of the original DDSP (whose
config and checkpoint `ddsp_models.compat` translates).
"""
import os

import gin
import numpy as np
import tensorflow as tf

from ddsp_models.gin_utils import register
from ddsp_models.training.models.autoencoder import Autoencoder


def _folder(ckpt) -> str:
    path = os.path.expanduser(os.fspath(ckpt))
    return path if os.path.isdir(path) else os.path.dirname(path)


def parse_operative_config(ckpt_dir):
    """Binds the newest ``operative_config-<step>.gin`` of a run folder (or of the folder of
    a checkpoint path), unknown bindings skipped; an original DDSP folder's config is
    translated (`compat.parse_upstream_operative_config`). Returns the config's path.

    Raises:
      FileNotFoundError: the folder has no operative config.
    """
    from ddsp_models import compat
    from ddsp_models.training.config import latest_operative_config, parse_gin

    folder = _folder(ckpt_dir)
    path = latest_operative_config(folder)
    if path is None:
        raise FileNotFoundError(f"no operative_config-<step>.gin in {folder!r}")
    with gin.unlock_config():
        if compat.is_upstream_folder(folder):
            compat.parse_upstream_operative_config(path)
        else:
            parse_gin(operative_config_dir=folder, skip_unknown=True)
    return path


@register("inference")
class AutoencoderInference(Autoencoder):
    """An `Autoencoder` of a trained run, rebuilt for clips of `length_seconds` and
    restored from `ckpt`, for inference (always ``training=False``).

    Args:
      ckpt: a run folder or checkpoint prefix (this project's or the original's).
      length_seconds: clip length the model is rebuilt for; frames = length * rate / hop
        (hop = the trained clip's samples / frames).
      remove_reverb: drop the reverb from the processor group (harmonic + noise only).
      verbose: print the lengths.
      **kwargs: `Autoencoder` arguments (default: the run's config).
    """

    def __init__(self, ckpt, length_seconds=4, remove_reverb=True, verbose=True, **kwargs):
        settings = self._configure_gin(ckpt, length_seconds, remove_reverb, verbose)
        super().__init__(**kwargs)
        self.length_seconds, self.remove_reverb = length_seconds, remove_reverb
        for name, value in settings.items():
            setattr(self, name, value)
        self.build_network()
        self.restore(ckpt, verbose=verbose)

    @staticmethod
    def _configure_gin(ckpt, length_seconds, remove_reverb, verbose) -> dict:
        """Parses the run's config and rebinds the clip length (and the synthesizer)."""
        parse_operative_config(ckpt)
        preprocessor = gin.query_parameter("Autoencoder.preprocessor")
        preprocessor_type = preprocessor.selector.split(".")[-1]
        sample_rate = gin.query_parameter("Harmonic.sample_rate")
        hop_size = gin.query_parameter("Harmonic.n_samples") // gin.query_parameter(
            f"{preprocessor_type}.time_steps")
        n_frames = int(length_seconds * sample_rate / hop_size)
        n_samples = n_frames * hop_size
        if verbose:
            print(f"N_Samples: {n_samples}\nHop Size: {hop_size}\nN_Frames: {n_frames}")
        config = [f"Harmonic.n_samples = {n_samples}", f"FilteredNoise.n_samples = {n_samples}",
                  f"{preprocessor_type}.time_steps = {n_frames}"]
        if remove_reverb:
            config.append("ProcessorGroup.dag = ["
                          "(@synths.Harmonic(), ['amps', 'harmonic_distribution', 'f0_hz']), "
                          "(@synths.FilteredNoise(), ['noise_magnitudes']), "
                          "(@processors.Add(), ['filtered_noise/signal', 'harmonic/signal'])]")
        with gin.unlock_config():
            gin.parse_config(config)
        return {"preprocessor_type": preprocessor_type, "sample_rate": sample_rate,
                "hop_size": hop_size, "n_frames": n_frames, "n_samples": n_samples}

    def restore(self, checkpoint_path, verbose=True, restore_keys=None):
        """Restores the run's weights (every variable of this model checked)."""
        from ddsp_models import compat
        from ddsp_models.training.checkpoints import resolve_checkpoint

        path = resolve_checkpoint(os.path.expanduser(os.fspath(checkpoint_path)))
        if compat.is_upstream_folder(os.path.dirname(path)):
            count = compat.restore_upstream_checkpoint(self, path, allow_unused=True)
        else:
            super().restore(path, restore_keys=restore_keys)
            count = len(self.weights)
        if verbose:
            print(f"Restored {count} variables from {path}")
        return path

    def example_inputs(self) -> dict:
        """Zero features of one clip: f0_hz and loudness_db (or power_db) `[1, n_frames]`,
        and audio `[1, n_samples]` when an encoder or the preprocessor reads it."""
        db_key = "power_db" if "Power" in self.preprocessor_type else "loudness_db"
        inputs = {db_key: np.zeros([1, self.n_frames], np.float32),
                  "f0_hz": np.zeros([1, self.n_frames], np.float32)}
        reads_audio = any(getattr(self.preprocessor, flag, False)
                          for flag in ("compute_loudness", "compute_power"))
        if self.encoder is not None or reads_audio:
            inputs["audio"] = np.zeros([1, self.n_samples], np.float32)
        return inputs

    def build_network(self):
        """Runs a zero clip through the model (creates its variables)."""
        self(self.example_inputs())

    def call(self, inputs, training=False, **unused_kwargs):
        return super().call(dict(inputs), training=False)

    def save_model(self, save_dir):
        """A SavedModel in `save_dir` whose ``serving_default`` takes one clip's features
        (`[1, n_frames]`, and audio `[1, n_samples]` with an encoder) and returns the
        synthesized ``audio_synth`` and the synthesizer controls."""
        names = sorted(self.example_inputs())
        specs = [tf.TensorSpec(v.shape, tf.float32, name=k)
                 for k, v in sorted(self.example_inputs().items())]
        keep = ("audio_synth", "amps", "harmonic_distribution", "noise_magnitudes", "f0_hz")

        @tf.function(input_signature=specs)
        def serve(*features):
            outputs = self(dict(zip(names, features)))
            return {k: outputs[k] for k in keep if k in outputs}

        module = tf.Module()
        module.model, module.serve = self, serve
        tf.saved_model.save(module, os.fspath(save_dir), signatures={"serving_default": serve})
        return os.fspath(save_dir)
