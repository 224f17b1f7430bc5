"""Using a trained model: resynthesis and timbre transfer of whole recordings, MIDI files
rendered through a MIDI model (Python API and command line).

A run folder (the pipeline's ``runs/<run>/`` or any ``ddsp_models.training.run`` save
dir) holds ``operative_config-<step>.gin``, checkpoints ``ckpt-<step>`` and, from the train
stage, ``dataset_statistics.json`` (`evaluation.compute_dataset_statistics` of the training
split). `load_run` turns it into a `LoadedRun`; other folder layouts (original DDSP model
folders) plug in with `register_run_loader`.

Any length: audio is read block by block (`audio_io.iter_audio_blocks`), features (CREPE f0
with Viterbi, confidence, A-weighted loudness, power) are computed on chunks of
`chunk_seconds` with `context_seconds` of audio either side, and the model runs chunk by
chunk with its GRU states carried across chunks (`nn.carry_rnn_states`) and its synthesis
continuing phase, noise filters and reverb tails (`ddsp_models.streaming`): the output of
N chunks equals the output of one pass, so chunk borders are inaudible. Only the frame
features of the whole recording (a few floats per 4 ms frame) stay in memory; audio is
held one chunk at a time and written as it is produced.

Units: audio float32 at the run's sample rate; frames at its frame rate; f0 in Hz, pitch
in MIDI notes, loudness / power in dB, velocity 0-127.

CLI (``python -m ddsp_models.training.inference --help``)::

  resynthesize --run-dir runs/ae --audio in.wav --out out.wav
  transfer     --run-dir runs/ae --audio in.wav --out out.wav [--octaves 1 --semitones 0
               --loudness-db 0 --no-auto --autotune 0.5 --quiet-db 20 --no-mute]
  midi         --run-dir runs/midiae --midi song.mid --out out.wav [--pitch-offset 0
               --tempo 1.0 --polyphony split|error]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time

import numpy as np

from ddsp_models.training.features import N_PITCHES, empty_midi_features, frame_at_or_after

log = logging.getLogger(__name__)

STATISTICS_FILE = "dataset_statistics.json"
DEFAULT_CHUNK_SECONDS = 20.0
DEFAULT_CONTEXT_SECONDS = 1.0
PLOT_SECONDS = 30.0


# ------------------------------------------------------------------------ run folders
@dataclasses.dataclass
class LoadedRun:
    """A restored model and what is needed to drive it.

    Attributes:
      folder: the run folder; checkpoint: the checkpoint prefix restored.
      model: the Keras model (`models.Autoencoder`, `MidiAutoencoder`, ...).
      sample_rate, frame_rate: Hz; hop: samples per frame.
      n_frames: frames of one training clip (what the model was built with).
      statistics: the training data's `dataset_statistics.json` (None when absent).
    """
    folder: str
    checkpoint: str
    model: object
    sample_rate: int
    frame_rate: int
    hop: int
    n_frames: int
    statistics: dict | None

    @property
    def is_midi_model(self) -> bool:
        return hasattr(self.model, "midi_decoder")


_RUN_LOADERS = []


def register_run_loader(loader, first: bool = True) -> None:
    """Adds a loader ``folder -> LoadedRun | None`` (None: not its kind of folder);
    `load_run` tries them in order, newest first when `first`."""
    if first:
        _RUN_LOADERS.insert(0, loader)
    else:
        _RUN_LOADERS.append(loader)


def load_run(folder) -> LoadedRun:
    """The model of a run folder, restored from its newest checkpoint (every variable
    verified), with rates and training-data statistics. ValueError naming the folder when
    no loader recognises it."""
    import ddsp_models.compat  # noqa: F401 - registers the loader of original DDSP folders

    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ValueError(f"run folder {folder!r} does not exist")
    for loader in _RUN_LOADERS:
        run = loader(folder)
        if run is not None:
            return run
    raise ValueError(f"run folder {folder!r} has no operative_config-*.gin and checkpoint "
                     "(train it first, or register a loader for its layout)")


def read_statistics(folder) -> dict | None:
    """``<folder>/dataset_statistics.json`` (None when absent; ValueError when unreadable)."""
    path = os.path.join(os.fspath(folder), STATISTICS_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            stats = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable JSON file ({error})") from error
    if not isinstance(stats, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return stats


def write_statistics(folder, stats: dict) -> str:
    """Writes `stats` as ``<folder>/dataset_statistics.json`` (atomically); returns the path."""
    path = os.path.join(os.fspath(folder), STATISTICS_FILE)
    os.makedirs(os.fspath(folder), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1)
    os.replace(tmp, path)
    return path


def dataset_statistics_of(provider, batch_size: int = 16) -> dict:
    """`evaluation.compute_dataset_statistics` over one pass of a data provider, plus its
    most common ``instrument_id`` (-1 when the data has none)."""
    from ddsp_models.training.evaluation import compute_dataset_statistics

    keys = ("f0_hz", "f0_confidence", "loudness_db", "power_db", "instrument_id")
    batches = [{k: v.numpy() for k, v in b.items() if k in keys} for b in  # frames only
               provider.get_batch(batch_size, shuffle=False, repeats=1, drop_remainder=False)]
    stats = compute_dataset_statistics(batches)
    ids = [np.asarray(b["instrument_id"]).reshape(-1) for b in batches if "instrument_id" in b]
    stats["instrument_id"] = -1
    if ids:
        values, counts = np.unique(np.concatenate(ids), return_counts=True)
        stats["instrument_id"] = int(values[np.argmax(counts)])
    return stats


def example_features(n_frames: int, n_samples: int, midi: bool = True) -> dict:
    """A batch of one all-zero feature dict of a clip's shapes, to build a model with."""
    frames = np.zeros([1, n_frames], np.float32)
    batch = {"audio": np.zeros([1, n_samples], np.float32), "f0_hz": frames + 220.0,
             "f0_confidence": frames, "loudness_db": frames - 60.0, "power_db": frames - 60.0,
             "instrument_id": np.zeros([1], np.int64)}
    if midi:
        batch.update(empty_midi_features(n_frames, batch_size=1))
    return batch


def load_trained_model(folder, example_batch: dict):
    """The model of a finished run, rebuilt from its newest operative config and restored
    from its newest checkpoint (every variable verified).

    Args:
      folder: the run folder.
      example_batch: a feature batch to build the model with.

    Raises:
      ValueError: naming the folder when it has no operative config or checkpoint.
    """
    import gin

    from ddsp_models.training import models
    from ddsp_models.training.config import latest_operative_config, parse_gin

    if latest_operative_config(folder) is None:
        raise ValueError(f"run folder {folder!r} has no operative_config-*.gin: train it first")
    gin.clear_config()
    parse_gin(operative_config_dir=folder)
    model = models.get_model()
    model.restore(folder, build_inputs={k: v[:1] for k, v in example_batch.items()})
    return model


def _load_own_run(folder: str) -> LoadedRun | None:
    """Loader of this project's run folders (operative config + ``ckpt-<step>``)."""
    import gin

    from ddsp_models.training import models
    from ddsp_models.training.models.model import resolve_checkpoint
    from ddsp_models.training.config import latest_operative_config, parse_gin

    if latest_operative_config(folder) is None:
        return None
    checkpoint = resolve_checkpoint(folder)
    gin.clear_config()
    parse_gin(operative_config_dir=folder)
    model = models.get_model()
    harmonic, _, _ = synth_processors(model)
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is None or not hasattr(preprocessor, "time_steps"):
        raise ValueError(f"run {folder!r}: {type(model).__name__} has no frame preprocessor "
                         "(f0 / loudness inputs); inference drives models with such controls")
    n_samples, sample_rate = harmonic.n_samples, harmonic.sample_rate
    n_frames = int(preprocessor.time_steps)
    if n_samples % n_frames:
        raise ValueError(f"run {folder!r}: {n_samples} samples per clip is not a whole number "
                         f"of its {n_frames} frames")
    hop = n_samples // n_frames
    if sample_rate % hop:
        raise ValueError(f"run {folder!r}: sample rate {sample_rate} is not a whole number of "
                         f"{hop}-sample frames")
    model.restore(checkpoint, build_inputs=example_features(n_frames, n_samples))
    return LoadedRun(folder, checkpoint, model, sample_rate, sample_rate // hop, hop, n_frames,
                     read_statistics(folder))


register_run_loader(_load_own_run, first=False)


def synth_processors(model):
    """(Harmonic, FilteredNoise or None, Reverb or None) of a model's processor group.

    ValueError when the group is not harmonic (+ noise) (+ reverb) (e.g. InverseSynthesis's
    sinusoidal synthesizer), which chunked synthesis does not render."""
    from ddsp_models import effects, processors, synths

    group = getattr(model, "processor_group", None)
    if group is None:
        raise ValueError(f"{type(model).__name__} has no processor_group: inference renders "
                         "models with a Harmonic (+ FilteredNoise) (+ Reverb) synthesizer")
    found = {"harmonic": [], "noise": [], "reverb": [], "other": []}
    for processor in group.processors:
        if isinstance(processor, synths.Harmonic):
            found["harmonic"].append(processor)
        elif isinstance(processor, synths.FilteredNoise):
            found["noise"].append(processor)
        elif isinstance(processor, effects.Reverb):
            found["reverb"].append(processor)
        elif not isinstance(processor, processors.Add):
            found["other"].append(processor)
    if len(found["harmonic"]) != 1 or len(found["noise"]) > 1 or len(found["reverb"]) > 1 \
            or found["other"]:
        names = [type(p).__name__ for p in group.processors]
        raise ValueError(f"{type(model).__name__}: unsupported synthesizer {names}; inference "
                         "renders one Harmonic, at most one FilteredNoise and one Reverb")
    return (found["harmonic"][0], (found["noise"] or [None])[0], (found["reverb"] or [None])[0])


def reverb_impulse_response(reverb) -> np.ndarray | None:
    """The impulse response `[n]` a (trained) reverb applies (its first sample, the dry
    path, is ignored by `effects.Reverb`), or None when it takes its IR as an input."""
    import tensorflow as tf

    if reverb is None or not getattr(reverb, "learn_ir", False):
        return None
    if not reverb.built:
        reverb.build(None)
    controls = reverb.get_controls(tf.zeros([1, 2], tf.float32))
    return np.asarray(controls["ir"], np.float32)[0]


# --------------------------------------------------------------------- controls per chunk
class ControlStream:
    """Synthesizer controls of consecutive chunks of frames, GRU states carried.

    ``branch='synth'``: features (f0_hz, loudness_db, power_db `[n]`) -> the model's
    preprocessor and decoder (Autoencoder: `decoder`; MIDI models: `synthcoder`, with the
    ZMidiAutoencoder's synth latents). ``branch='midi'``: (pitch, velocity `[n]`) -> the
    MIDI models' `midi_decoder` (ZMidiAutoencoder: latent from `midi_latent`).
    `__call__` returns (f0_hz `[n, 1]`, raw controls dict of `[n, c]` arrays).
    """

    def __init__(self, run: LoadedRun, branch: str = "synth", midi_z=None):
        from ddsp_models.training import nn

        self.run, self.model, self.branch = run, run.model, branch
        self.states = nn.RnnStates()
        self.midi_z = midi_z
        if branch == "synth":
            if getattr(self.model, "encoder", None) is not None:
                raise ValueError(f"{type(self.model).__name__} in {run.folder!r} has an audio "
                                 "encoder (z from the audio): chunked inference drives models "
                                 "from f0 and loudness / power only")
            self.decoder = getattr(self.model, "decoder", None) or getattr(self.model, "synthcoder", None)
            if self.decoder is None:
                raise ValueError(f"{type(self.model).__name__} has no decoder / synthcoder")
        elif branch == "midi":
            if not run.is_midi_model:
                raise ValueError(f"run {run.folder!r} is a {type(self.model).__name__}, not a "
                                 "MIDI model (MidiAutoencoder / ZMidiAutoencoder): it cannot "
                                 "render MIDI")
        else:
            raise ValueError(f"branch must be 'synth' or 'midi', got {branch!r}")

    def __call__(self, chunk: dict):
        import tensorflow as tf

        from ddsp_models.training import nn

        with nn.carry_rnn_states(self.states):
            if self.branch == "midi":
                inputs = {k: tf.constant(np.asarray(chunk[k], np.float32).reshape(1, -1, 1))
                          for k in ("pitch", "velocity")}
                if self.midi_z is not None:
                    inputs["z"] = tf.constant(self.midi_z)
                params = dict(self.model.midi_decoder(inputs, training=False))
                f0 = params.pop("f0_hz")
                params.pop("f0_midi", None)
            else:
                features = {k: tf.constant(np.asarray(v, np.float32).reshape(1, -1))
                            for k, v in chunk.items() if k in ("f0_hz", "loudness_db", "power_db")}
                n = int(features["f0_hz"].shape[1])
                preprocessor = self.model.preprocessor
                saved = preprocessor.time_steps
                preprocessor.time_steps = n
                try:
                    outputs = self.model.encode(features, training=False)
                finally:
                    preprocessor.time_steps = saved
                params = dict(self.decoder(outputs, training=False))
                f0 = outputs["f0_hz"]
        return (np.asarray(f0, np.float32)[0].reshape(-1, 1),
                {k: np.asarray(v, np.float32)[0] for k, v in params.items()})


def midi_latent(run: LoadedRun, instrument_id: int | None = None):
    """The ZMidiAutoencoder's midi_decoder latent `[1, 1, n]` for MIDI files (no audio):
    its global latent's mean for `instrument_id` (default: the training data's most common
    one), note latents at their prior mean (0), through `z_preconditioning_stack`. None for
    a MidiAutoencoder (no latent)."""
    import tensorflow as tf

    model = run.model
    if not hasattr(model, "z_global_encoders"):
        return None
    parts = []
    if model.z_global_encoders:
        if instrument_id is None:
            instrument_id = int((run.statistics or {}).get("instrument_id", 0))
        params = [np.asarray(encoder({"instrument_id": tf.constant([instrument_id])},
                                     training=False), np.float32)
                  for encoder in model.z_global_encoders]
        z_global = np.concatenate([p.mean(axis=1) if p.ndim == 3 else p for p in params], -1)
        if model.global_prior:
            z_global = z_global[:, :z_global.shape[-1] // 2]
        parts.append(z_global)
    if model.z_note_encoder is not None:
        probe = {"pw_scaled": tf.zeros([1, 1, 1]), "f0_scaled": tf.zeros([1, 1, 1]),
                 "ld_scaled": tf.zeros([1, 1, 1])}
        dims = int(np.asarray(model.z_note_encoder(probe, training=False)).shape[-1])
        parts.append(np.zeros([1, dims // 2 if model.note_prior else dims], np.float32))
    if not parts:
        return None
    z = np.concatenate(parts, -1)[:, np.newaxis, :]
    if model.z_preconditioning_stack is not None:
        z = np.asarray(model.z_preconditioning_stack(tf.constant(z, tf.float32)), np.float32)
    return z.astype(np.float32)


# -------------------------------------------------------------------------- rendering
def harmonic_amplitudes(harmonic, amps, harmonic_distribution, f0_hz):
    """Per-harmonic amplitudes `[batch, n, K]` (overall amplitude times the distribution)
    from raw decoder outputs `[batch, n, 1]`, `[batch, n, K]` and f0 `[batch, n, 1]` Hz,
    scaled and normalised as `synths.Harmonic.get_controls` does (any number of frames).
    numpy f0 in: numpy out; else a tensor."""
    from ddsp_models import core

    amps = core.tf_float32(amps, "amps")
    distribution = core.tf_float32(harmonic_distribution, "harmonic_distribution")
    if harmonic.scale_fn is not None:
        amps, distribution = harmonic.scale_fn(amps), harmonic.scale_fn(distribution)
    if harmonic.normalize_below_nyquist:
        distribution = core.normalize_harmonics(distribution, core.tf_float32(f0_hz, "f0_hz"),
                                                harmonic.sample_rate)
    else:
        distribution = core.normalize_harmonics(distribution)
    out = amps * distribution
    return out if not isinstance(f0_hz, np.ndarray) else np.asarray(out, np.float32)


def noise_magnitudes_tf(noise, magnitudes):
    """Linear filter gains `[..., n, bands]` (a tensor) from raw decoder outputs, as
    `synths.FilteredNoise.get_controls` (any number of frames)."""
    from ddsp_models import core

    magnitudes = core.tf_float32(magnitudes, "noise_magnitudes")
    if noise.scale_fn is not None:
        magnitudes = noise.scale_fn(magnitudes + noise.initial_bias)
    return magnitudes


def noise_magnitudes(noise, magnitudes) -> np.ndarray:
    """`noise_magnitudes_tf` as numpy."""
    return np.asarray(noise_magnitudes_tf(noise, magnitudes), np.float32)


class ChunkRenderer:
    """Harmonic + filtered noise (+ gate) (+ reverb) audio of a stream of control chunks.

    ``push(f0_hz [n, 1], controls)`` (raw decoder outputs: amps, harmonic_distribution,
    noise_magnitudes) returns the finished samples so far; ``finish()`` the rest. Noise is
    drawn from one seeded generator in order, so chunking does not change it. `gain`
    (optional, `[n_frames]` in [0, 1] for the whole stream) multiplies the dry sound,
    linearly between frames (muting frames off a note); the reverb tail rings on.
    """

    def __init__(self, run: LoadedRun, gain=None, seed: int = 0, reverb: bool = True):
        from ddsp_models import streaming

        self.run = run
        self.harmonic, self.noise, reverb_processor = synth_processors(run.model)
        self.hop = run.hop
        self.harmonic_stream = streaming.HarmonicStream(run.sample_rate, run.hop)
        self.dry = streaming.OverlapAdd()
        ir = reverb_impulse_response(reverb_processor) if reverb else None
        self.reverb = (streaming.ReverbStream(ir, getattr(reverb_processor, "add_dry", True))
                       if ir is not None else None)
        self.rng = np.random.default_rng(seed)
        self.gain = None if gain is None else np.asarray(gain, np.float32).reshape(-1)
        self.frames_in = 0      # frames pushed
        self.harmonic_end = 0   # samples of harmonic sound added to `dry`
        self.noise_delay = 0

    def push(self, f0_hz, controls: dict) -> np.ndarray:
        from ddsp_models import streaming

        f0_hz = np.asarray(f0_hz, np.float32).reshape(-1, 1)
        n = f0_hz.shape[0]
        start = self.frames_in * self.hop
        amplitudes = harmonic_amplitudes(self.harmonic, controls["amps"][np.newaxis],
                                         controls["harmonic_distribution"][np.newaxis],
                                         f0_hz[np.newaxis])[0]
        audio = self.harmonic_stream.push(f0_hz, amplitudes)
        self.dry.add(self.harmonic_end, audio)
        self.harmonic_end += audio.size
        if self.noise is not None and "noise_magnitudes" in controls:
            magnitudes = noise_magnitudes(self.noise, controls["noise_magnitudes"])
            noise = self.rng.uniform(-1.0, 1.0, n * self.hop).astype(np.float32)
            full, ir_size = streaming.filtered_noise_block(noise, magnitudes, self.noise.window_size)
            self.noise_delay = ir_size // 2
            self.dry.add(start - ir_size // 2, full)
        self.frames_in += n
        ready = min(self.harmonic_end, self.frames_in * self.hop - self.noise_delay)
        return self._emit(ready)

    def finish(self) -> np.ndarray:
        """Renders the last frame (held) and everything still pending."""
        audio = self.harmonic_stream.flush()
        self.dry.add(self.harmonic_end, audio)
        self.harmonic_end += audio.size
        return self._emit(self.frames_in * self.hop)

    def _emit(self, until: int) -> np.ndarray:
        start = self.dry.offset
        dry = self.dry.take(max(until, start))
        if self.gain is not None and dry.size:
            dry = dry * self._sample_gain(start, dry.size)
        if self.reverb is not None:
            return self.reverb.push(dry)
        return dry

    def _sample_gain(self, start: int, size: int) -> np.ndarray:
        """Frame gains at samples [start, start + size): linear from frame i to i + 1."""
        positions = (start + np.arange(size)) / float(self.hop)
        frames = np.arange(self.gain.size)
        return np.interp(positions, frames, self.gain).astype(np.float32)


def render(run: LoadedRun, controls: ControlStream, chunks, n_samples: int, sink, gain=None,
           seed: int = 0, progress: bool = False, total_chunks: int | None = None,
           desc: str = "render") -> int:
    """Runs `controls` over `chunks` (dicts of frame arrays) and feeds the audio to
    ``sink(block)`` as it is finished; the total is cut to `n_samples`. Returns samples
    written."""
    from tqdm import tqdm

    renderer = ChunkRenderer(run, gain=gain, seed=seed)
    written = 0

    def emit(block):
        nonlocal written
        block = block[:max(0, n_samples - written)]
        if block.size:
            sink(block)
            written += block.size

    for chunk in tqdm(chunks, total=total_chunks, desc=desc, unit="chunk", disable=not progress,
                      file=sys.stderr, dynamic_ncols=True):
        f0_hz, params = controls(chunk)
        emit(renderer.push(f0_hz, params))
    emit(renderer.finish())
    if written < n_samples:  # frames cover the input; pad the reverb-less remainder
        emit(np.zeros(n_samples - written, np.float32))
    return written


# ---------------------------------------------------------------------------- features
@dataclasses.dataclass
class Features:
    """Frame features of a whole recording (float32 `[n_frames]` each) and its length."""
    f0_hz: np.ndarray
    f0_confidence: np.ndarray
    loudness_db: np.ndarray
    power_db: np.ndarray
    n_samples: int
    sample_rate: int
    frame_rate: int
    head: np.ndarray  # the first PLOT_SECONDS of audio (for the spectrogram)

    def as_dict(self) -> dict:
        return {"f0_hz": self.f0_hz, "f0_confidence": self.f0_confidence,
                "loudness_db": self.loudness_db, "power_db": self.power_db}

    @property
    def n_frames(self) -> int:
        return int(self.f0_hz.size)


def _frames_of(x, start: int, n: int) -> np.ndarray:
    """Frames [start, start + n) of a per-segment feature (edge-padded when short)."""
    x = np.asarray(x, np.float32).reshape(-1)
    out = x[start:start + n]
    if out.size < n:
        out = np.pad(out, (0, n - out.size), mode="edge" if out.size else "constant")
    return out


def compute_features(blocks, sample_rate: int = 16000, frame_rate: int = 250,
                     crepe_capacity: str = "tiny", viterbi: bool = True,
                     chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
                     context_seconds: float = DEFAULT_CONTEXT_SECONDS,
                     progress: bool = False, total_seconds: float | None = None) -> Features:
    """Frame features of an audio stream, computed chunk by chunk.

    Args:
      blocks: iterable of float32 mono blocks at `sample_rate` (any sizes), e.g.
        `audio_io.iter_audio_blocks`; consumed lazily (at most one chunk plus context is
        held).
      chunk_seconds: frames computed per chunk; context_seconds: extra audio either side
        of a chunk that CREPE (and its Viterbi path), loudness and power see, so frames
        near chunk borders equal those of one pass.
      total_seconds: length, for the progress bar.

    Returns:
      `Features`: n_frames = ceil(n_samples / hop); frame i at i / frame_rate s.
    """
    from tqdm import tqdm

    from ddsp_models import crepe, spectral_ops

    if sample_rate % frame_rate:
        raise ValueError(f"frame_rate {frame_rate} must divide sample_rate {sample_rate}")
    hop = sample_rate // frame_rate
    chunk_frames = max(1, int(round(chunk_seconds * frame_rate)))
    context = max(1, int(np.ceil(context_seconds * frame_rate))) * hop
    iterator = iter(blocks)
    buffer = np.zeros(context, np.float32)  # zeros before the start (centred framing)
    buffer_start = -context                 # absolute sample of buffer[0]
    total, exhausted = 0, False
    head = []
    head_samples = int(PLOT_SECONDS * sample_rate)
    out = {k: [] for k in ("f0_hz", "f0_confidence", "loudness_db", "power_db")}
    frame = 0
    bar = tqdm(total=None if total_seconds is None else int(np.ceil(total_seconds * frame_rate)),
               desc="features", unit="frame", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    with bar:
        while True:
            end = (frame + chunk_frames) * hop + context
            while not exhausted and buffer_start + buffer.size < end:
                try:
                    block = np.asarray(next(iterator), np.float32).reshape(-1)
                except StopIteration:
                    exhausted = True
                    break
                if sum(h.size for h in head) < head_samples:
                    head.append(block[:head_samples - sum(h.size for h in head)].copy())
                buffer = np.concatenate([buffer, block])
                total += block.size
            n_total_frames = -(-total // hop)
            if exhausted and frame >= n_total_frames:
                break
            n = min(chunk_frames, n_total_frames - frame) if exhausted else chunk_frames
            if n <= 0:
                break
            seg_start = frame * hop - context
            end = (frame + n) * hop + context
            segment = buffer[seg_start - buffer_start:end - buffer_start]
            if segment.size < end - seg_start:
                segment = np.pad(segment, (0, end - seg_start - segment.size))
            f0, confidence = crepe.compute_f0(segment, sample_rate=sample_rate,
                                              frame_rate=frame_rate, viterbi=viterbi,
                                              capacity=crepe_capacity)
            loudness = spectral_ops.compute_loudness(segment, sample_rate, frame_rate, use_tf=False)
            power = spectral_ops.compute_power(segment, sample_rate, frame_rate)
            skip = context // hop
            for key, value in (("f0_hz", f0), ("f0_confidence", confidence),
                               ("loudness_db", loudness), ("power_db", power)):
                out[key].append(_frames_of(value, skip, n))
            frame += n
            bar.update(n)
            keep_from = frame * hop - context
            buffer = buffer[keep_from - buffer_start:]
            buffer_start = keep_from
    if total == 0:
        raise ValueError("audio: no samples")
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    return Features(**arrays, n_samples=total, sample_rate=sample_rate, frame_rate=frame_rate,
                    head=np.concatenate(head) if head else np.zeros(0, np.float32))


def frame_chunks(arrays: dict, chunk_frames: int):
    """Yields dicts of consecutive `chunk_frames` slices of equal-length frame arrays."""
    n = len(next(iter(arrays.values())))
    for start in range(0, n, chunk_frames):
        yield {k: np.asarray(v)[start:start + chunk_frames] for k, v in arrays.items()}


# ------------------------------------------------------------------------ audio -> audio
class _WavSink:
    """Writes blocks to ``<path>.partial`` as they come (renamed to `path` by `close`,
    removed by `abort`); keeps the first PLOT_SECONDS for a plot."""

    def __init__(self, path: str, sample_rate: int, keep_samples: int):
        from ddsp_models.audio_io import WavWriter

        self.path = path
        self.writer = WavWriter(path + ".partial", sample_rate)
        self.keep, self.head = keep_samples, []
        self.kept = 0

    def __call__(self, block):
        self.writer.write(block)
        if self.kept < self.keep:
            self.head.append(np.asarray(block[:self.keep - self.kept], np.float32))
            self.kept += self.head[-1].size

    def close(self):
        os.replace(self.writer.close(), self.path)
        return np.concatenate(self.head) if self.head else np.zeros(0, np.float32)

    def abort(self):
        os.remove(self.writer.close())


def _transfer_features(features: Features, run: LoadedRun, octaves: float, semitones: float,
                       loudness_db: float, auto: bool, autotune: float, quiet_db: float,
                       mute: bool):
    """Adjusted frame features, per-frame output gain (None: no muting) and what was done."""
    from ddsp_models.training.evaluation import adjust_for_timbre_transfer
    from ddsp_models.training import postprocessing

    mask_on, ratio = postprocessing.detect_notes(features.loudness_db, features.f0_confidence)
    if auto and not run.statistics:
        raise ValueError(f"run {run.folder!r} has no {STATISTICS_FILE}: automatic adjustment "
                         "needs the training data's statistics (retrain with the current "
                         "pipeline, or pass --no-auto)")
    adjusted, info = adjust_for_timbre_transfer(
        features.as_dict(), octave_shift=int(octaves), loudness_shift_db=loudness_db,
        auto_adjust=auto, dataset_stats=run.statistics if auto else None,
        semitone_shift=semitones, mask_on=mask_on if auto else None, note_on_ratio=ratio,
        quiet_off_db=quiet_db, autotune=autotune)
    info["note_on_fraction"] = float(mask_on.mean()) if mask_on.size else 0.0
    gain = None
    if mute:
        # Smoothed on/off (about 20 ms ramps), so muting never clicks.
        gain = np.clip(postprocessing.smooth(mask_on.astype(np.float64), 5), 0.0, 1.0)
    return adjusted, gain, info


def process_audio(run: LoadedRun, audio, out_path: str, mode: str = "resynthesize",
                  octaves: int = 0, semitones: float = 0.0, loudness_db: float = 0.0,
                  auto: bool = True, autotune: float = 0.0, quiet_db: float = 20.0,
                  mute: bool = True, crepe_capacity: str = "tiny",
                  chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
                  context_seconds: float = DEFAULT_CONTEXT_SECONDS, seed: int = 0,
                  plot: bool = True, progress: bool = True) -> dict:
    """Resynthesis or timbre transfer of a recording of any length.

    Args:
      run: a `load_run` result (a model driven by f0 and loudness / power).
      audio: a file path (any format `audio_io` reads: any rate, channels, length) or an
        iterable of float32 mono blocks at the run's sample rate (read lazily).
      out_path: output wav (same length as the input, the run's sample rate); a PNG of the
        input's and output's spectrograms (first 30 s) is written beside it.
      mode: 'resynthesize' (features as they are) or 'transfer' (the notebook's controls:
        `octaves`, `semitones`, `loudness_db` shifts; `auto` adjustment to the training
        data (pitch register, loudness quantiles, quiet parts turned down by `quiet_db`);
        `autotune` 0..1; `mute` frames off a note).
      crepe_capacity: 'tiny' or 'full'.
      chunk_seconds, context_seconds: see `compute_features`.
      seed: noise generator seed.

    Returns:
      a summary dict: paths, seconds, shifts applied, frames, timings.
    """
    from ddsp_models.audio_io import iter_audio_blocks

    if mode not in ("resynthesize", "transfer"):
        raise ValueError(f"mode must be 'resynthesize' or 'transfer', got {mode!r}")
    t0 = time.monotonic()
    name = None
    total_seconds = None
    if isinstance(audio, (str, os.PathLike)):
        name = os.fspath(audio)
        total_seconds = _duration(name)
        blocks = iter_audio_blocks(name, run.sample_rate)
    else:
        blocks = audio
    features = compute_features(blocks, run.sample_rate, run.frame_rate, crepe_capacity,
                                True, chunk_seconds, context_seconds, progress, total_seconds)
    t_features = time.monotonic() - t0
    frames = features.as_dict()
    gain, info = None, {}
    if mode == "transfer":
        frames, gain, info = _transfer_features(features, run, octaves, semitones, loudness_db,
                                                auto, autotune, quiet_db, mute)
    chunk_frames = max(1, int(round(chunk_seconds * run.frame_rate)))
    sink = _WavSink(out_path, run.sample_rate, int(PLOT_SECONDS * run.sample_rate))
    try:
        written = render(run, ControlStream(run, "synth"), frame_chunks(frames, chunk_frames),
                         features.n_samples, sink, gain=gain, seed=seed, progress=progress,
                         total_chunks=-(-features.n_frames // chunk_frames), desc=mode)
    except BaseException:
        sink.abort()
        raise
    head = sink.close()
    result = {"mode": mode, "run": run.folder, "input": name, "output": out_path,
              "seconds": features.n_samples / run.sample_rate, "samples": written,
              "frames": features.n_frames, "features_seconds": round(t_features, 2),
              "total_seconds": round(time.monotonic() - t0, 2), **info}
    if plot:
        from ddsp_models.training.plotting import plot_spectrograms

        png = os.path.splitext(out_path)[0] + ".png"
        n = min(head.size, features.head.size)
        if n > 1024:
            label = os.path.basename(name) if name else "input"
            result["spectrogram"] = plot_spectrograms(
                {f"input ({label})": features.head[:n], f"{mode}": head[:n]}, png,
                sample_rate=run.sample_rate,
                title=f"{os.path.basename(run.folder.rstrip(os.sep))}: {mode}"
                      + (f" (first {n / run.sample_rate:.0f} s)" if n < features.n_samples else ""))
    return result


def _duration(path: str) -> float | None:
    try:
        import soundfile as sf

        return float(sf.info(path).duration)
    except Exception:  # noqa: BLE001 - only for the progress bar
        return None


def resynthesize(run: LoadedRun, audio, out_path: str, **kwargs) -> dict:
    """`process_audio` in 'resynthesize' mode."""
    return process_audio(run, audio, out_path, mode="resynthesize", **kwargs)


def transfer(run: LoadedRun, audio, out_path: str, **kwargs) -> dict:
    """`process_audio` in 'transfer' mode."""
    return process_audio(run, audio, out_path, mode="transfer", **kwargs)


# --------------------------------------------------------------------------------- MIDI
def midi_voices(path, frame_rate: int = 250, pitch_offset: int = 0, tempo: float = 1.0,
                polyphony: str = "split", tail_seconds: float = 0.5) -> list[dict]:
    """Monophonic voices of a MIDI file as frame arrays.

    Each non-drum instrument track is split into voices: a note goes to the first voice
    that is silent at its start (`polyphony='split'`); with 'error' a track with overlapping
    notes raises ValueError naming it. Times are divided by `tempo` (2.0 plays twice as
    fast); pitches move by `pitch_offset` semitones.

    Returns:
      [{'track': name, 'voice': i, 'program', 'pitch', 'velocity' (float32 `[n_frames]`,
      MIDI note / velocity 0-127, 0 where silent), 'n_notes'}], all of one length
      (the last note's end plus `tail_seconds`).
    """
    import pretty_midi

    path = os.fspath(path)
    if tempo <= 0:
        raise ValueError(f"tempo must be > 0, got {tempo}")
    if polyphony not in ("split", "error"):
        raise ValueError(f"polyphony must be 'split' or 'error', got {polyphony!r}")
    try:
        midi = pretty_midi.PrettyMIDI(path)
    except Exception as error:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable MIDI file ({error})") from error
    tracks = [inst for inst in midi.instruments if not inst.is_drum and inst.notes]
    if not tracks:
        raise ValueError(f"{path}: no (non-drum) notes")
    end = max(n.end for inst in tracks for n in inst.notes) / tempo + tail_seconds
    n_frames = int(np.ceil(end * frame_rate))
    voices, names = [], {}
    for index, inst in enumerate(tracks):
        base = (inst.name or pretty_midi.program_to_instrument_name(inst.program)).strip() \
            or f"track{index}"
        base = "".join(c if c.isalnum() or c in "-_" else "_" for c in base)
        names[base] = names.get(base, 0) + 1
        name = base if names[base] == 1 else f"{base}_{names[base]}"
        ends, lanes = [], []
        for note in sorted(inst.notes, key=lambda n: (n.start, n.pitch)):
            start, stop = note.start / tempo, note.end / tempo
            lane = next((i for i, e in enumerate(ends) if e <= start + 1e-9), None)
            if lane is None:
                if ends and polyphony == "error":
                    raise ValueError(f"{path}: track {name!r} is polyphonic (a note at "
                                     f"{note.start:.3f} s starts before the previous one ends); "
                                     "use polyphony='split' to render it as several voices")
                lane = len(ends)
                ends.append(0.0)
                lanes.append([])
            ends[lane] = stop
            lanes[lane].append((start, stop, note.pitch + int(pitch_offset), note.velocity))
        for lane_index, notes in enumerate(lanes):
            pitch = np.zeros(n_frames, np.float32)
            velocity = np.zeros(n_frames, np.float32)
            for start, stop, p, v in notes:
                if not 0 <= p < N_PITCHES:
                    raise ValueError(f"{path}: track {name!r}: pitch {p} (with offset "
                                     f"{pitch_offset}) is outside MIDI 0..{N_PITCHES - 1}")
                a = frame_at_or_after(start, frame_rate)
                b = max(frame_at_or_after(stop, frame_rate), a + 1)
                pitch[a:b], velocity[a:b] = p, v
            voices.append({"track": name, "voice": lane_index, "program": inst.program,
                           "pitch": pitch, "velocity": velocity, "n_notes": len(notes)})
    return voices


def render_midi(run: LoadedRun, midi_path, out_path: str, pitch_offset: int = 0,
                tempo: float = 1.0, polyphony: str = "split", instrument_id: int | None = None,
                chunk_seconds: float = DEFAULT_CHUNK_SECONDS, seed: int = 0,
                progress: bool = True, plot: bool = True) -> dict:
    """Renders a MIDI file through a MIDI model's midi_decoder and synthesizer.

    Every voice (`midi_voices`) is rendered (frames outside its notes muted, with 20 ms
    ramps; the reverb tail rings on); the voices of a track are summed into a stem
    ``<out>_<track>.wav``; the stems are summed into `out_path` (scaled down when the mix
    would clip; the gain is reported). Returns a summary dict.
    """
    from ddsp_models.audio_io import write_wav
    from ddsp_models.training import postprocessing

    voices = midi_voices(midi_path, run.frame_rate, pitch_offset, tempo, polyphony)
    controls_z = midi_latent(run, instrument_id)
    n_frames = voices[0]["pitch"].size
    n_samples = n_frames * run.hop
    chunk_frames = max(1, int(round(chunk_seconds * run.frame_rate)))
    stems = {}
    for i, voice in enumerate(voices):
        on = (voice["velocity"] > 0).astype(np.float64)
        gain = np.clip(postprocessing.smooth(on, 5), 0.0, 1.0)  # 20 ms ramps
        blocks = []
        render(run, ControlStream(run, "midi", midi_z=controls_z),
               frame_chunks({"pitch": voice["pitch"], "velocity": voice["velocity"]}, chunk_frames),
               n_samples, blocks.append, gain=gain, seed=seed + i, progress=progress,
               total_chunks=-(-n_frames // chunk_frames),
               desc=f"{voice['track']} voice {voice['voice']}")
        audio = np.concatenate(blocks)
        stems[voice["track"]] = stems.get(voice["track"], 0.0) + audio
    mix = sum(stems.values())
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    mix_gain = 1.0 if peak <= 0.99 else 0.99 / peak
    stem_paths = {}
    base = os.path.splitext(out_path)[0]
    for track, audio in stems.items():
        stem_peak = float(np.max(np.abs(audio)))
        stem_paths[track] = write_wav(f"{base}_{track}.wav",
                                      audio * (1.0 if stem_peak <= 0.99 else 0.99 / stem_peak),
                                      run.sample_rate)
    write_wav(out_path, mix * mix_gain, run.sample_rate)
    result = {"mode": "midi", "run": run.folder, "midi": os.fspath(midi_path), "output": out_path,
              "stems": stem_paths, "seconds": n_samples / run.sample_rate,
              "voices": [{"track": v["track"], "voice": v["voice"], "n_notes": v["n_notes"]}
                         for v in voices], "mix_gain": mix_gain, "pitch_offset": pitch_offset,
              "tempo": tempo}
    if plot:
        from ddsp_models.training.plotting import plot_spectrograms

        n = int(min(mix.size, PLOT_SECONDS * run.sample_rate))
        result["spectrogram"] = plot_spectrograms(
            {"MIDI rendering": mix[:n] * mix_gain}, base + ".png", sample_rate=run.sample_rate,
            title=f"{os.path.basename(os.fspath(midi_path))} through "
                  f"{os.path.basename(run.folder.rstrip(os.sep))}")
    return result


# ---------------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ddsp_models.training.inference",
        description="Use a trained run: resynthesize or transfer a recording of any length, "
                    "or render a MIDI file with a MIDI model.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, audio: bool = True):
        p.add_argument("--run-dir", required=True, help="run folder (runs/ae, runs/midiae, ...)")
        if audio:
            p.add_argument("--audio", required=True, nargs="+",
                           help="input recording(s): any format, rate, channels, length")
        p.add_argument("--out", required=True,
                       help="output wav (several inputs: a folder, one <name>.wav each)")
        p.add_argument("--chunk-seconds", type=float, default=DEFAULT_CHUNK_SECONDS,
                       help="audio processed per chunk (memory bound)")
        p.add_argument("--seed", type=int, default=0, help="noise seed")
        p.add_argument("--no-plot", action="store_true", help="no spectrogram PNG")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        if audio:
            p.add_argument("--crepe-capacity", default="tiny", choices=("tiny", "full"))
            p.add_argument("--context-seconds", type=float, default=DEFAULT_CONTEXT_SECONDS,
                           help="audio either side of a chunk that the features see")

    common(sub.add_parser("resynthesize", help="audio -> features -> model -> audio"))
    t = sub.add_parser("transfer", help="timbre transfer with the notebook's controls")
    common(t)
    t.add_argument("--octaves", type=int, default=0, help="pitch shift, octaves")
    t.add_argument("--semitones", type=float, default=0.0, help="pitch shift, semitones")
    t.add_argument("--loudness-db", type=float, default=0.0, help="loudness shift, dB")
    t.add_argument("--no-auto", action="store_true",
                   help="no automatic adjustment to the training data")
    t.add_argument("--autotune", type=float, default=0.0, help="0..1 toward the nearest semitone")
    t.add_argument("--quiet-db", type=float, default=20.0,
                   help="dB that frames off a note are turned down (auto adjustment)")
    t.add_argument("--no-mute", action="store_true",
                   help="synthesise quiet / unpitched parts instead of muting them")
    m = sub.add_parser("midi", help="render a MIDI file with a MIDI model")
    common(m, audio=False)
    m.add_argument("--midi", required=True, help="MIDI file")
    m.add_argument("--pitch-offset", type=int, default=0, help="semitones added to every note")
    m.add_argument("--tempo", type=float, default=1.0, help="speed factor (2 = twice as fast)")
    m.add_argument("--polyphony", choices=("split", "error"), default="split",
                   help="split polyphonic tracks into voices, or refuse them")
    m.add_argument("--instrument-id", type=int, default=None,
                   help="ZMidiAutoencoder: instrument whose latent to use")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run = load_run(args.run_dir)
    progress = not args.quiet
    if args.command == "midi":
        result = render_midi(run, args.midi, args.out, args.pitch_offset, args.tempo,
                             args.polyphony, args.instrument_id, args.chunk_seconds, args.seed,
                             progress, not args.no_plot)
        print(json.dumps(result, indent=1))
        return 0
    kwargs = dict(crepe_capacity=args.crepe_capacity, chunk_seconds=args.chunk_seconds,
                  context_seconds=args.context_seconds, seed=args.seed, plot=not args.no_plot,
                  progress=progress)
    if args.command == "transfer":
        kwargs.update(octaves=args.octaves, semitones=args.semitones, loudness_db=args.loudness_db,
                      auto=not args.no_auto, autotune=args.autotune, quiet_db=args.quiet_db,
                      mute=not args.no_mute)
    outputs = ([args.out] if len(args.audio) == 1 else
               [os.path.join(args.out, os.path.splitext(os.path.basename(a))[0] + ".wav")
                for a in args.audio])
    failed = []
    for path, out in zip(args.audio, outputs):
        try:
            result = process_audio(run, path, out, mode=args.command, **kwargs)
            print(json.dumps(result, indent=1))
        except ValueError as error:  # a bad file: report it, go on with the others
            log.error("%s: %s", path, error)
            failed.append(path)
    if failed:
        log.error("failed: %s", failed)
        return 1
    return 0


_ORIGINAL_NAMES = {
    "inference_original": ("AutoencoderInference", "parse_operative_config"),
    "inference_vst": ("VSTBaseModule", "VSTExtractFeatures", "VSTPredictControls",
                      "VSTStatelessPredictControls", "VSTSynthesize", "VSTSynthesizeHarmonic",
                      "VSTSynthesizeNoise"),
}


def __getattr__(name: str):
    """The original DDSP's inference names (`inference_original`, `inference_vst`),
    imported on first use so that importing this module stays free of TensorFlow."""
    import importlib

    for module, names in _ORIGINAL_NAMES.items():
        if name in names:
            return getattr(importlib.import_module(f"ddsp_models.training.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())

