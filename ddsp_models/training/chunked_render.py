"""Chunked rendering: a model's synthesizer controls for consecutive chunks of frames (GRU
states carried across chunks, `gru.carry_rnn_states`) and the audio of those controls with
phase, noise filters and reverb tails continuing across chunks (`ddsp_models.streaming`), so
N chunks give the audio of one pass.

Units: audio float32 at the run's sample rate; f0 in Hz; frames `[n]` at its frame rate;
pitch in MIDI notes, velocity 0-127.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ddsp_models.training.run_folders import LoadedRun


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
        from ddsp_models.training import gru

        self.run, self.model, self.branch = run, run.model, branch
        self.states = gru.RnnStates()
        self.midi_z = midi_z
        if branch == "synth":
            if getattr(self.model, "encoder", None) is not None:
                raise ValueError(f"{type(self.model).__name__} in {run.folder!r} has an audio "
                                 "encoder (z from the audio): chunked inference drives models "
                                 "from f0 and loudness / power only")
            self.decoder = (getattr(self.model, "decoder", None)
                            or getattr(self.model, "synthcoder", None))
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

        from ddsp_models.training import gru

        with gru.carry_rnn_states(self.states):
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
        from ddsp_models import core, streaming

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
            full, ir_size = streaming.filtered_noise_block(noise, magnitudes,
                                                           self.noise.window_size)
            self.noise_delay = core.default_delay_compensation(ir_size)
            self.dry.add(start - self.noise_delay, full)
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

