"""The original DDSP's DDSP-VST export modules under its names (``inference.VST*``), built on
this package's streaming export (`export.InferenceModule`, `streaming`).

Each module reads a run folder (this project's, or an original DDSP folder through
`ddsp_models.compat`) and has a single-frame ``call`` and ``save_model(save_dir)`` (a
SavedModel with a ``call`` signature), as the original:

- `VSTExtractFeatures`: ``call(audio [frame_size])`` -> f0_hz, f0_scaled, pw_db, pw_scaled
  (CREPE on the frame; power = mean square in dB), each `[1]`.
- `VSTPredictControls`: ``call(f0_scaled [1], pw_scaled [1])`` -> amps `[1]`, hd
  `[n_harmonics]` (normalised), noise `[n_noise]` (linear gains); the GRU starts from zeros.
- `VSTStatelessPredictControls`: the same plus ``state [state_size]`` in and out.
- `VSTSynthesize`: one hop of audio from this and the previous frame's controls and the
  phase; `VSTSynthesizeHarmonic` without noise; `VSTSynthesizeNoise` noise only.

The loudness input is the run's own (power for power models, loudness for loudness ones).
"""
import os

import tensorflow as tf

from ddsp_models import core, streaming
from ddsp_models import crepe as crepe_lib


def _run_folder(ckpt) -> str:
    path = os.path.expanduser(os.fspath(ckpt))
    return path if os.path.isdir(path) else os.path.dirname(path)


class VSTBaseModule(tf.Module):
    """Base: loads the run (`parse_gin`), then `configure_gin` and `build_network`."""

    def __init__(self, ckpt, verbose=False, **kwargs):
        super().__init__(name=kwargs.pop("name", None))
        self.verbose = verbose
        self.parse_gin(ckpt)
        self.configure_gin()
        self.build_network()

    def parse_gin(self, ckpt):
        """Loads the run and reads its sizes: frame_size (CREPE's, samples), sample_rate,
        hop_size, n_harmonics, n_noise, state_size (GRU units), resample_method."""
        from ddsp_models.training.export import InferenceModule
        from ddsp_models.training.inference import load_run

        self.run = load_run(_run_folder(ckpt))
        self.module = InferenceModule(self.run)
        self.model = self.run.model  # tracked: the SavedModel holds the weights
        self.frame_size = crepe_lib.FRAME_SIZE
        self.sample_rate, self.hop_size = self.run.sample_rate, self.run.hop
        self.n_harmonics, self.n_noise = self.module.n_harmonics, self.module.n_noise
        self.state_size = self.module.state_size
        self.resample_method = self.module.harmonic.amp_resample_method

    def configure_gin(self):
        """Subclass hook (settings for the streaming variant)."""

    @property
    def _signatures(self):
        raise NotImplementedError

    def save_model(self, save_dir):
        """A SavedModel with the ``call`` signature."""
        tf.saved_model.save(self, os.fspath(save_dir), signatures=self._signatures)
        return os.fspath(save_dir)

    def _build_network(self, *dummy_inputs):
        return self.call(*dummy_inputs)

    def _controls(self, f0_scaled, pw_scaled, state=None):
        from ddsp_models.training.preprocessing import inv_scale_db, inv_scale_f0_hz

        f0_hz = inv_scale_f0_hz(tf.reshape(f0_scaled, [1, 1]))
        db = inv_scale_db(tf.reshape(pw_scaled, [1, 1]))
        if state is not None:
            state = tf.reshape(state, [1, self.state_size])
        out = self.module.controls(f0_hz, db, state, mode="steps")
        noise = out.get("noise_magnitudes", tf.zeros([1, 1, 0]))
        return (out["amplitudes"][0, 0], out["harmonic_distribution"][0, 0], noise[0, 0],
                out["state"][0])


class VSTExtractFeatures(VSTBaseModule):
    """Features of one CREPE frame (see the module docstring).

    Args:
      crepe_saved_model_path: the CREPE capacity ('tiny' default, 'full'); SavedModel
        folders are not supported.
    """

    def __init__(self, ckpt, crepe_saved_model_path=None, **kwargs):
        capacity = crepe_saved_model_path or "tiny"
        if capacity not in crepe_lib.CAPACITY_MULTIPLIERS:
            raise ValueError("VSTExtractFeatures: crepe_saved_model_path must be a CREPE "
                             f"capacity {sorted(crepe_lib.CAPACITY_MULTIPLIERS)}, got "
                             f"{crepe_saved_model_path!r}")
        self.crepe_capacity = capacity
        super().__init__(ckpt, **kwargs)

    def configure_gin(self):
        self.crepe = crepe_lib.PretrainedCREPE(capacity=self.crepe_capacity, sample_rate=16000,
                                               frame_rate=self.run.frame_rate)
        self.crepe(tf.zeros([1, 16000]))

    @property
    def _signatures(self):
        return {"call": self.call.get_concrete_function(
            audio=tf.TensorSpec([self.frame_size], tf.float32))}

    def build_network(self):
        self._build_network(tf.zeros([self.frame_size]))

    @tf.function
    def call(self, audio):
        from ddsp_models.training.preprocessing import scale_db, scale_f0_hz

        audio = tf.reshape(audio, [1, self.frame_size])
        _, activations = self.crepe.network(crepe_lib.normalize_frames(audio), training=False)
        f0_hz, _ = crepe_lib.activations_to_f0_tf(activations)
        pw_db = core.power_to_db(tf.reduce_mean(tf.square(audio), axis=-1), range_db=core.LD_RANGE)
        f0_hz = tf.reshape(f0_hz, [1])
        pw_db = tf.reshape(pw_db, [1])
        return f0_hz, scale_f0_hz(f0_hz), pw_db, scale_db(pw_db)


class VSTPredictControls(VSTBaseModule):
    """Controls of one frame, the GRU starting from zeros (module docstring)."""

    @property
    def _signatures(self):
        return {"call": self.call.get_concrete_function(
            f0_scaled=tf.TensorSpec([1], tf.float32), pw_scaled=tf.TensorSpec([1], tf.float32))}

    def build_network(self):
        self._build_network(tf.zeros([1]), tf.zeros([1]))

    @tf.function
    def call(self, f0_scaled, pw_scaled):
        amps, hd, noise, _ = self._controls(f0_scaled, pw_scaled)
        return amps, hd, noise


class VSTStatelessPredictControls(VSTBaseModule):
    """Controls of one frame with the GRU state passed in and out (module docstring)."""

    @property
    def _signatures(self):
        return {"call": self.call.get_concrete_function(
            f0_scaled=tf.TensorSpec([1], tf.float32), pw_scaled=tf.TensorSpec([1], tf.float32),
            state=tf.TensorSpec([self.state_size], tf.float32))}

    def build_network(self):
        self._build_network(tf.zeros([1]), tf.zeros([1]), tf.zeros([self.state_size]))

    @tf.function
    def call(self, f0_scaled, pw_scaled, state):
        return self._controls(f0_scaled, pw_scaled, state)


class VSTSynthesize(VSTBaseModule):
    """One hop of harmonic + filtered-noise audio (module docstring).

    Args:
      new_hop_size: render this many samples per frame instead of the run's hop.
    """

    def __init__(self, ckpt, new_hop_size=None, **kwargs):
        self.new_hop_size = new_hop_size
        super().__init__(ckpt, **kwargs)

    def configure_gin(self):
        self.hop_size = int(self.new_hop_size or self.hop_size)
        self.noise_window_size = getattr(self.module.noise, "window_size", 0) or 0

    ALL_INPUTS = ("amps", "prev_amps", "hd", "prev_hd", "f0", "prev_f0", "noise", "prev_phase")
    HARMONIC_INPUTS = ("amps", "prev_amps", "hd", "prev_hd", "f0", "prev_f0", "prev_phase")

    def _specs(self, names):
        sizes = {"amps": 1, "prev_amps": 1, "hd": self.n_harmonics, "prev_hd": self.n_harmonics,
                 "f0": 1, "prev_f0": 1, "noise": self.n_noise, "prev_phase": 1}
        return {name: tf.TensorSpec([sizes[name]], tf.float32) for name in names}

    @property
    def _signatures(self):
        return {"call": self.call.get_concrete_function(**self._specs(self.ALL_INPUTS))}

    def build_network(self):
        self._build_network(*[tf.zeros(s.shape) for s in self._specs(self.ALL_INPUTS).values()])

    def _harmonic(self, amps, prev_amps, hd, prev_hd, f0, prev_f0, prev_phase):
        f0_hz = tf.reshape(tf.stack([prev_f0, f0]), [1, 2, 1])
        amplitudes = tf.reshape(tf.stack([prev_amps * prev_hd, amps * hd]),
                                [1, 2, self.n_harmonics])
        audio, phase = streaming.harmonic_block(f0_hz, amplitudes, tf.reshape(prev_phase, [1, 1]),
                                                self.sample_rate, self.hop_size)
        return audio[0], phase[0, 0]

    def _noise(self, noise):
        magnitudes = tf.reshape(noise, [1, 1, self.n_noise])
        white = tf.random.uniform([1, self.hop_size], -1.0, 1.0)
        return streaming.filtered_noise_frames(white, magnitudes, self.hop_size,
                                               self.noise_window_size)[0]

    @tf.function
    def call(self, amps, prev_amps, hd, prev_hd, f0, prev_f0, noise, prev_phase):
        harmonic, phase = self._harmonic(amps, prev_amps, hd, prev_hd, f0, prev_f0, prev_phase)
        return harmonic + self._noise(noise), phase


class VSTSynthesizeHarmonic(VSTSynthesize):
    """One hop of harmonic audio only."""

    @property
    def _signatures(self):
        return {"call": self.call.get_concrete_function(**self._specs(self.HARMONIC_INPUTS))}

    def build_network(self):
        self._build_network(*[tf.zeros(s.shape)
                              for s in self._specs(self.HARMONIC_INPUTS).values()])

    @tf.function
    def call(self, amps, prev_amps, hd, prev_hd, f0, prev_f0, prev_phase):
        return self._harmonic(amps, prev_amps, hd, prev_hd, f0, prev_f0, prev_phase)


class VSTSynthesizeNoise(VSTSynthesize):
    """One hop of filtered noise only."""

    @property
    def _signatures(self):
        return {"call": self.call.get_concrete_function(**self._specs(("noise",)))}

    def build_network(self):
        self._build_network(tf.zeros([self.n_noise]))

    @tf.function
    def call(self, noise):
        return self._noise(noise)
