"""Export a trained run for real-time use (the original ``ddsp_export``, for DDSP-VST-style
plugins): a SavedModel, TFLite models of the streaming split, metadata and the reverb IR.

``python -m ddsp_models.training.export --run-dir runs/ae --out exported/ae`` writes:

- ``saved_model/``: a SavedModel whose signatures take any number of frames:
  ``controls_to_audio(f0_hz, loudness_db)`` -> audio (and its harmonic / noise parts),
  ``audio_to_audio(audio)`` (f0 from CREPE tiny inside the graph (local weighted average,
  no Viterbi), loudness / power computed inside) -> audio and the features,
  ``predict_controls(f0_hz, loudness_db, state)`` -> synthesizer controls and the GRU
  state, ``synthesize(f0_hz, amplitudes, harmonic_distribution, noise_magnitudes, phase)``
  -> one block of audio continuing `phase`. (A power-driven model takes ``power_db``
  where this says ``loudness_db``. A decoder with a latent ``z`` input (from an audio
  encoder, or the ZMidiAutoencoder's synth latents) takes ``z`` `[1, n_frames, z_dims]`
  as one more input of controls_to_audio / predict_controls (`[1, 1, z_dims]` in
  TFLite), and has no audio_to_audio.)
- ``tflite/``: the DDSP-VST split for frame-by-frame streaming, each with ``metadata.json``
  packed inside (a zip appended to the flatbuffer, as tflite_support does):
  ``predict_controls.tflite`` (one frame + state in -> controls + state out; stateless),
  ``synthesize.tflite`` (harmonic + noise audio of `block_frames` frames from
  `block_frames + 1` frames of harmonic controls, continuing the phase) and
  ``extract_features.tflite`` (one 1024-sample frame -> CREPE f0, confidence, power).
- ``metadata.json``: the plugin's fields (mean min / max pitch note and Hz, mean min / max
  power note, frame rate, frame size, sample rate, harmonics, noise bands, GRU state
  size, version, export time) from the run's ``dataset_statistics.json``.
- ``reverb_ir_<rate>_hz.wav``: the trained reverb's impulse response (at the model's rate
  and resampled to `ir_rates`), when the model has a trained reverb.

Streaming contract: frame i covers samples [i * hop, (i + 1) * hop); the harmonic
synthesizer interpolates to the next frame inside a frame, so a block of n frames is
rendered from n + 1 frames of controls (the next block's first frame; the last frame
repeated at the end), i.e. one frame of latency; `phase` carries over.
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
import zipfile

import numpy as np

from ddsp_models.cli_logging import configure_cli_logging

log = logging.getLogger(__name__)

VERSION = "ddsp-pipelines-1"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ddsp-pipelines")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return VERSION


class InferenceModule:
    """The model's controls and synthesizer as TF functions of any number of frames.

    Built from a `LoadedRun` whose model is driven by f0 and loudness (or power) through
    an `RnnFcDecoder`-like decoder (`decoder` or, for MIDI models, `synthcoder`) and
    renders with Harmonic (+ FilteredNoise) (+ Reverb).
    """

    def __init__(self, run):
        import tensorflow as tf

        from ddsp_models.training import chunked_render, nn

        self.run = run
        model = run.model
        self.decoder = getattr(model, "decoder", None) or getattr(model, "synthcoder", None)
        if self.decoder is None or not hasattr(self.decoder, "input_keys"):
            raise ValueError(f"{type(model).__name__} in {run.folder!r}: export needs a decoder "
                             "with input_keys (f0_scaled, ld_scaled | pw_scaled[, z])")
        keys = list(self.decoder.input_keys)
        if "f0_scaled" not in keys:
            raise ValueError(f"decoder input_keys {keys} lack 'f0_scaled'")
        loud = [k for k in keys if k in ("ld_scaled", "pw_scaled")]
        if len(loud) != 1 or set(keys) - {"f0_scaled", "ld_scaled", "pw_scaled", "z"}:
            raise ValueError(f"decoder input_keys {keys}: export supports f0_scaled with one of "
                             "ld_scaled / pw_scaled and an optional z")
        self.loudness_key = loud[0]
        self.loudness_name = "loudness_db" if loud[0] == "ld_scaled" else "power_db"
        # A latent input (from an audio encoder, or the ZMidiAutoencoder's synth latents)
        # becomes an input of the exported functions: z `[1, n, z_dims]` per frame.
        self.z_dims = None
        if "z" in keys:
            stack = self.decoder.input_stacks[keys.index("z")]
            kernels = [w for w in stack.weights if len(w.shape) == 2]
            if not kernels:
                raise ValueError("cannot tell the decoder's z size (no Dense kernel in its z stack)")
            self.z_dims = int(kernels[0].shape[0])
        self.harmonic, self.noise, reverb = chunked_render.synth_processors(model)
        self.ir = chunked_render.reverb_impulse_response(reverb)
        self.add_dry = getattr(reverb, "add_dry", True)
        self.sample_rate, self.frame_rate, self.hop = run.sample_rate, run.frame_rate, run.hop
        self.n_harmonics = int(dict(self.decoder.output_splits)["harmonic_distribution"])
        self.n_noise = int(dict(self.decoder.output_splits).get("noise_magnitudes", 0))
        # GRU states: every Rnn inside the decoder, in a fixed order.
        self.rnns = sorted([layer for layer in _sublayers(self.decoder)
                            if isinstance(layer, nn.Rnn)], key=lambda layer: layer.name)
        if not self.rnns:
            raise ValueError("the decoder has no GRU: nothing to stream")
        self.state_sizes = [layer.dims for layer in self.rnns]
        self.state_size = int(sum(self.state_sizes))
        self.tf = tf

    # ------------------------------------------------------------------ maths
    def controls(self, f0_hz, loudness, state=None, mode: str = "scan", z=None):
        """Scaled controls of frames `[batch, n]` and the GRU state `[batch, state_size]`.

        Returns: dict amplitudes `[b, n, 1]`, harmonic_distribution `[b, n, K]` (normalised,
        zero at or above Nyquist), noise_magnitudes `[b, n, bands]` (linear gains), f0_hz
        `[b, n, 1]`, harmonic_amplitudes `[b, n, K]`, state `[b, state_size]`.
        """
        from ddsp_models import core
        from ddsp_models.training import gru
        from ddsp_models.training.chunked_render import noise_magnitudes_tf
        from ddsp_models.training.preprocessing import scale_db, scale_f0_hz

        tf = self.tf
        f0_hz = core.ensure_3d(core.tf_float32(f0_hz, "f0_hz"), "f0_hz")
        loudness = core.ensure_3d(core.tf_float32(loudness, self.loudness_name), self.loudness_name)
        values = {}
        if state is not None:
            parts = tf.split(state, self.state_sizes, axis=-1)
            values = {layer.name: part for layer, part in zip(self.rnns, parts)}
        states = gru.RnnStates(values, mode=mode)
        inputs = {"f0_scaled": scale_f0_hz(f0_hz), self.loudness_key: scale_db(loudness)}
        if self.z_dims:
            if z is None:
                raise ValueError(f"this decoder takes a latent z [batch, n_frames, {self.z_dims}]")
            inputs["z"] = core.tf_float32(z, "z")
        with gru.carry_rnn_states(states):
            raw = self.decoder(inputs, training=False)
        new_state = tf.concat([states.values[layer.name] for layer in self.rnns], axis=-1)
        amps = raw["amps"]
        distribution = raw["harmonic_distribution"]
        if self.harmonic.scale_fn is not None:
            amps, distribution = self.harmonic.scale_fn(amps), self.harmonic.scale_fn(distribution)
        distribution = (core.normalize_harmonics(distribution, f0_hz, self.sample_rate)
                        if self.harmonic.normalize_below_nyquist
                        else core.normalize_harmonics(distribution))
        out = {"amplitudes": amps, "harmonic_distribution": distribution, "f0_hz": f0_hz,
               "harmonic_amplitudes": amps * distribution, "state": new_state}
        if self.noise is not None and "noise_magnitudes" in raw:
            out["noise_magnitudes"] = noise_magnitudes_tf(self.noise, raw["noise_magnitudes"])
        return out

    def synthesize(self, f0_hz, harmonic_amplitudes, noise_magnitudes, phase, noise=None,
                   builtin_ops: bool = False):
        """(audio, harmonic, noise, phase) of n frames from n + 1 frames of f0 / harmonic
        amplitudes and n frames of noise gains (`streaming.harmonic_block`; noise blocks
        filtered independently, cropped as FilteredNoise). `noise`: uniform noise
        `[b, n * hop]` (None: drawn). `builtin_ops`: only TFLite builtin ops (float32
        phase sums, matmul filters; a static number of frames)."""
        from ddsp_models import streaming

        tf = self.tf
        harmonic, new_phase = streaming.harmonic_block(f0_hz, harmonic_amplitudes, phase,
                                                       self.sample_rate, self.hop,
                                                       float64_phase=not builtin_ops)
        if noise_magnitudes is None or self.noise is None:
            filtered = tf.zeros_like(harmonic)
        else:
            if noise is None:
                noise = tf.random.uniform(tf.shape(harmonic), -1.0, 1.0)
            noise_fn = (streaming.filtered_noise_block_tf if builtin_ops
                        else streaming.filtered_noise_frames)
            filtered = noise_fn(noise, noise_magnitudes, self.hop, self.noise.window_size)
        return harmonic + filtered, harmonic, filtered, new_phase

    def controls_to_audio(self, f0_hz, loudness, z=None):
        """Whole-clip audio `[b, n * hop]` (reverb included) of frames `[b, n]`."""
        from ddsp_models import streaming

        tf = self.tf
        c = self.controls(f0_hz, loudness, mode="scan", z=z)
        f0 = tf.concat([c["f0_hz"], c["f0_hz"][:, -1:]], axis=1)
        amps = tf.concat([c["harmonic_amplitudes"], c["harmonic_amplitudes"][:, -1:]], axis=1)
        phase = tf.zeros([tf.shape(f0)[0], 1])
        dry, harmonic, filtered, _ = self.synthesize(f0, amps, c.get("noise_magnitudes"), phase)
        audio = streaming.reverb_tf(dry, self.ir, self.add_dry) if self.ir is not None else dry
        return {"audio": audio, "harmonic": harmonic, "noise": filtered,
                "amplitudes": c["amplitudes"], "harmonic_distribution": c["harmonic_distribution"],
                **({"noise_magnitudes": c["noise_magnitudes"]} if "noise_magnitudes" in c else {})}

    def features(self, audio, crepe):
        """In-graph features of audio `[b, n_samples]` (any length): f0_hz, f0_confidence
        (CREPE, local weighted average), loudness_db or power_db, `[b, n_samples // hop]`."""
        from ddsp_models import core, spectral_ops
        from ddsp_models import crepe as crepe_lib

        tf = self.tf
        audio = tf.convert_to_tensor(audio, tf.float32)
        n_frames = tf.shape(audio)[1] // self.hop
        half = crepe_lib.FRAME_SIZE // 2
        padded = tf.pad(audio, [[0, 0], [half, half]])
        frames = tf.signal.frame(padded, crepe_lib.FRAME_SIZE, self.hop)[:, :n_frames]
        frames = crepe_lib.normalize_frames(frames)
        batch = tf.shape(frames)[0]
        _, activations = crepe.network(tf.reshape(frames, [-1, crepe_lib.FRAME_SIZE]), training=False)
        activations = tf.reshape(activations, [batch, n_frames, crepe_lib.N_PITCH_BINS])
        f0_hz, confidence = crepe_lib.activations_to_f0_tf(activations)
        # Loudness / power as spectral_ops computes them with its defaults (centred 512-sample
        # frames, 80 dB range), the first n_frames of them, for any length.
        size = 512
        padded = tf.pad(audio, [[0, 0], [size // 2, size]])
        frames = tf.signal.frame(padded, size, self.hop)[:, :n_frames]
        if self.loudness_name == "loudness_db":
            spectrum = tf.signal.rfft(frames * tf.signal.hann_window(size, periodic=True))
            power = tf.square(tf.math.real(spectrum)) + tf.square(tf.math.imag(spectrum))
            weights = spectral_ops.a_weighted_mean_weights(self.sample_rate, size)
            mean = tf.tensordot(power, tf.constant(weights), axes=1)
        else:
            mean = tf.reduce_mean(tf.square(frames), axis=-1)
        loud = core.power_to_db(mean, ref_db=0.0, range_db=core.DB_RANGE)
        return {"f0_hz": f0_hz, "f0_confidence": confidence, self.loudness_name: loud}


def _sublayers(layer):
    """`layer` and every Keras layer below it."""
    seen, stack, out = set(), [layer], []
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        out.append(current)
        stack.extend(getattr(current, "_layers", []) or [])
        for value in vars(current).values():
            if hasattr(value, "weights") and hasattr(value, "name") and id(value) not in seen:
                stack.append(value)
    return out


# -------------------------------------------------------------------------- SavedModel
def build_saved_model_module(module: InferenceModule, crepe_capacity: str = "tiny"):
    """A `tf.Module` with the serving signatures (see the module docstring)."""
    import tensorflow as tf

    from ddsp_models.crepe import PretrainedCREPE

    crepe = PretrainedCREPE(capacity=crepe_capacity, sample_rate=16000, frame_rate=module.frame_rate)
    crepe(tf.zeros([1, 16000]))  # build
    if module.sample_rate != 16000:
        raise ValueError("audio_to_audio's in-graph CREPE needs 16 kHz models")
    loud = module.loudness_name
    holder = tf.Module()
    holder.model = module.run.model
    holder.crepe = crepe

    z_specs = ([tf.TensorSpec([1, None, module.z_dims], tf.float32, "z")] if module.z_dims
               else [])

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.float32, "f0_hz"),
                                  tf.TensorSpec([1, None], tf.float32, loud)] + z_specs)
    def controls_to_audio(f0_hz, loudness, *z):
        return module.controls_to_audio(f0_hz, loudness, z[0] if z else None)

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.float32, "audio")])
    def audio_to_audio(audio):
        feats = module.features(audio, crepe)
        out = module.controls_to_audio(feats["f0_hz"], feats[loud])
        n = tf.shape(audio)[1]
        rendered = out["audio"]
        pad = tf.maximum(n - tf.shape(rendered)[1], 0)
        out["audio"] = tf.pad(rendered, [[0, 0], [0, pad]])[:, :n]
        return {**out, **feats}

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.float32, "f0_hz"),
                                  tf.TensorSpec([1, None], tf.float32, loud),
                                  tf.TensorSpec([1, module.state_size], tf.float32, "state")]
                 + z_specs)
    def predict_controls(f0_hz, loudness, state, *z):
        return module.controls(f0_hz, loudness, state, mode="scan", z=z[0] if z else None)

    @tf.function(input_signature=[tf.TensorSpec([1, None, 1], tf.float32, "f0_hz"),
                                  tf.TensorSpec([1, None, module.n_harmonics], tf.float32,
                                                "harmonic_amplitudes"),
                                  tf.TensorSpec([1, None, max(module.n_noise, 1)], tf.float32,
                                                "noise_magnitudes"),
                                  tf.TensorSpec([1, 1], tf.float32, "phase")])
    def synthesize(f0_hz, harmonic_amplitudes, noise_magnitudes, phase):
        audio, harmonic, noise, new_phase = module.synthesize(
            f0_hz, harmonic_amplitudes, noise_magnitudes if module.n_noise else None, phase)
        return {"audio": audio, "harmonic": harmonic, "noise": noise, "phase": new_phase}

    holder.controls_to_audio = controls_to_audio
    holder.audio_to_audio = audio_to_audio if not module.z_dims else None
    holder.predict_controls = predict_controls
    holder.synthesize = synthesize
    return holder


def save_saved_model(module: InferenceModule, path: str, crepe_capacity: str = "tiny") -> str:
    import tensorflow as tf

    holder = build_saved_model_module(module, crepe_capacity)
    signatures = {"serving_default": holder.controls_to_audio.get_concrete_function(),
                  "controls_to_audio": holder.controls_to_audio.get_concrete_function(),
                  "predict_controls": holder.predict_controls.get_concrete_function(),
                  "synthesize": holder.synthesize.get_concrete_function()}
    if holder.audio_to_audio is not None:  # z models: z comes from outside the graph
        signatures["audio_to_audio"] = holder.audio_to_audio.get_concrete_function()
    tf.saved_model.save(holder, path, signatures=signatures)
    return path


# ------------------------------------------------------------------------------ TFLite
def _convert(concrete, holder, path: str, metadata_path: str | None) -> str:
    """One signature -> .tflite, every variable frozen into a constant (a streaming host
    runs one signature and no variable initialiser), inputs and outputs keeping their
    names."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(concrete)
    specs = list(concrete.structured_input_signature[0])
    keys = sorted(concrete.structured_outputs)  # the order tf.nest flattens a dict in

    def named(*args):
        return dict(zip(keys, frozen(*args)))

    wrapped = tf.function(named, input_signature=specs).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([wrapped], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    data = converter.convert()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    if metadata_path:
        attach_metadata(path, metadata_path)
    return path


def attach_metadata(tflite_path: str, metadata_path: str) -> None:
    """Appends a zip archive holding ``metadata.json`` to a .tflite file (the layout
    tflite_support's MetadataPopulator writes and DDSP-VST reads); the flatbuffer before
    it is untouched, so interpreters load the file as before."""
    with zipfile.ZipFile(tflite_path, "a") as archive:
        archive.write(metadata_path, "metadata.json")


def read_attached_metadata(tflite_path: str) -> dict:
    """The ``metadata.json`` packed into a .tflite file by `attach_metadata`."""
    with zipfile.ZipFile(tflite_path) as archive:
        return json.loads(archive.read("metadata.json"))


def save_tflite(module: InferenceModule, folder: str, metadata_path: str | None,
                block_frames: int = 1, crepe_capacity: str = "tiny") -> dict:
    """predict_controls / synthesize / extract_features .tflite files (module docstring)."""
    import tensorflow as tf

    from ddsp_models import core
    from ddsp_models import crepe as crepe_lib
    from ddsp_models.crepe import PretrainedCREPE

    holder = tf.Module()
    holder.model = module.run.model
    loud = module.loudness_name

    z_specs = ([tf.TensorSpec([1, 1, module.z_dims], tf.float32, "z")] if module.z_dims else [])

    @tf.function(input_signature=[tf.TensorSpec([1, 1], tf.float32, "f0_hz"),
                                  tf.TensorSpec([1, 1], tf.float32, loud),
                                  tf.TensorSpec([1, module.state_size], tf.float32, "state")]
                 + z_specs)
    def predict_controls(f0_hz, loudness, state, *z):
        out = module.controls(f0_hz, loudness, state, mode="steps", z=z[0] if z else None)
        out.pop("harmonic_amplitudes")
        return out

    n = int(block_frames)

    @tf.function(input_signature=[tf.TensorSpec([1, n + 1, 1], tf.float32, "f0_hz"),
                                  tf.TensorSpec([1, n + 1, module.n_harmonics], tf.float32,
                                                "harmonic_amplitudes"),
                                  tf.TensorSpec([1, n, max(module.n_noise, 1)], tf.float32,
                                                "noise_magnitudes"),
                                  tf.TensorSpec([1, n * module.hop], tf.float32, "noise"),
                                  tf.TensorSpec([1, 1], tf.float32, "phase")])
    def synthesize(f0_hz, harmonic_amplitudes, noise_magnitudes, noise, phase):
        audio, harmonic, filtered, new_phase = module.synthesize(
            f0_hz, harmonic_amplitudes, noise_magnitudes if module.n_noise else None, phase,
            noise=noise, builtin_ops=True)
        return {"audio": audio, "harmonic": harmonic, "noise": filtered, "phase": new_phase}

    crepe = PretrainedCREPE(capacity=crepe_capacity, sample_rate=16000, frame_rate=module.frame_rate)
    crepe(tf.zeros([1, 16000]))
    holder.crepe = crepe

    @tf.function(input_signature=[tf.TensorSpec([1, crepe_lib.FRAME_SIZE], tf.float32, "audio")])
    def extract_features(audio):
        frames = crepe_lib.normalize_frames(audio)
        _, activations = crepe.network(frames, training=False)
        f0_hz, confidence = crepe_lib.activations_to_f0_tf(activations)
        # compute_power's default: the centred 512 samples of the frame, 80 dB range.
        centre = crepe_lib.FRAME_SIZE // 2
        mean_square = tf.reduce_mean(tf.square(audio[:, centre - 256:centre + 256]), axis=-1)
        power_db = core.power_to_db(mean_square, range_db=core.DB_RANGE)
        return {"f0_hz": f0_hz, "f0_confidence": confidence, "power_db": power_db}

    paths = {}
    for name, fn in (("predict_controls", predict_controls), ("synthesize", synthesize),
                     ("extract_features", extract_features)):
        paths[name] = _convert(fn.get_concrete_function(), holder,
                               os.path.join(folder, f"{name}.tflite"), metadata_path)
    return paths


# ---------------------------------------------------------------------------- metadata
def metadata_dict(module: InferenceModule) -> dict:
    """The plugin's metadata fields from the run's dataset statistics (ValueError naming
    the run folder when it has none)."""
    from ddsp_models import core
    from ddsp_models.training.run_folders import STATISTICS_FILE

    stats = module.run.statistics
    if not stats:
        raise ValueError(f"run {module.run.folder!r} has no {STATISTICS_FILE} (the train stage "
                         "writes it): the metadata needs the training data's pitch and power range")
    missing = [k for k in ("mean_min_pitch_note", "mean_max_pitch_note", "mean_min_power_note",
                           "mean_max_power_note") if stats.get(k) is None]
    if missing:
        raise ValueError(f"{module.run.folder}/{STATISTICS_FILE}: no {missing} (no note frames, "
                         "or written by an older version: retrain or recompute it)")
    hz = lambda note: float(core.midi_to_hz(float(note)))  # noqa: E731
    return {
        "mean_min_pitch_note": float(stats["mean_min_pitch_note"]),
        "mean_max_pitch_note": float(stats["mean_max_pitch_note"]),
        "mean_min_pitch_note_hz": hz(stats["mean_min_pitch_note"]),
        "mean_max_pitch_note_hz": hz(stats["mean_max_pitch_note"]),
        "mean_min_power_note": float(stats["mean_min_power_note"]),
        "mean_max_power_note": float(stats["mean_max_power_note"]),
        "version": _version(),
        "export_time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "num_harmonics": module.n_harmonics,
        "num_noise_amps": module.n_noise,
        "frame_rate": module.frame_rate,
        "frame_size": 1024,
        "hop_size": module.hop,
        "sample_rate": module.sample_rate,
        "state_size": module.state_size,
        "controls_input": module.loudness_name,
        "z_dims": module.z_dims or 0,
    }


def save_impulse_response(module: InferenceModule, folder: str, rates=(44100, 48000)) -> list:
    """``reverb_ir_<rate>_hz.wav`` (32-bit float) at the model's rate and each of `rates`."""
    from ddsp_models.audio_io import resample, write_wav

    if module.ir is None:
        return []
    paths = [write_wav(os.path.join(folder, f"reverb_ir_{module.sample_rate}_hz.wav"), module.ir,
                       module.sample_rate, subtype="FLOAT")]
    for rate in rates or ():
        if int(rate) == module.sample_rate:
            continue
        resampled = resample(module.ir.astype(np.float64), module.sample_rate, int(rate))
        paths.append(write_wav(os.path.join(folder, f"reverb_ir_{int(rate)}_hz.wav"), resampled,
                               int(rate), subtype="FLOAT"))
    return paths


def export_run(run_dir: str, out_dir: str, block_frames: int = 1, ir_rates=(44100, 48000),
               crepe_capacity: str = "tiny", tflite: bool = True) -> dict:
    """Writes everything of the module docstring for a run; returns the paths."""
    from ddsp_models.training.run_folders import load_run

    run = load_run(run_dir)
    module = InferenceModule(run)
    os.makedirs(out_dir, exist_ok=True)
    metadata = metadata_dict(module)
    metadata_path = os.path.join(out_dir, "metadata.json")
    with open(metadata_path, "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=1)
    result = {"metadata": metadata_path,
              "saved_model": save_saved_model(module, os.path.join(out_dir, "saved_model"),
                                              crepe_capacity),
              "reverb_ir": save_impulse_response(module, out_dir, ir_rates)}
    if tflite:
        result["tflite"] = save_tflite(module, os.path.join(out_dir, "tflite"), metadata_path,
                                       block_frames, crepe_capacity)
    log.info("exported %s to %s", run_dir, out_dir)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddsp_models.training.export",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", required=True, help="run folder (runs/ae)")
    parser.add_argument("--out", required=True, help="output folder (exported/ae)")
    parser.add_argument("--block-frames", type=int, default=1,
                        help="frames per synthesize.tflite call")
    parser.add_argument("--ir-rates", type=int, nargs="*", default=[44100, 48000],
                        help="extra sample rates of the reverb IR wav")
    parser.add_argument("--crepe-capacity", default="tiny", choices=("tiny", "full"))
    parser.add_argument("--no-tflite", action="store_true")
    args = parser.parse_args(argv)
    configure_cli_logging()
    result = export_run(args.run_dir, args.out, args.block_frames, args.ir_rates,
                        args.crepe_capacity, not args.no_tflite)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
