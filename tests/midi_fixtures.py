"""Synthetic MIDI-labelled notes for the MIDI model tests (not a test module).

`midi_notes` renders monophonic melodies of harmonic notes and returns the audio, its frame
features and the note features a MIDI dataset provides.
"""
import numpy as np

from ddsp_models.training.features import N_PITCHES
from model_fixtures import FRAME_RATE, shrink_bindings


def midi_notes(n_examples: int = 2, seconds: float = 0.5, sample_rate: int = 16000, n_notes: int = 3,
               seed: int = 0, n_harmonics: int = 8, n_instruments: int = 4) -> dict:
    """Monophonic melodies of `n_notes` harmonic notes each (numpy, batch first).

    Each note: a random pitch (MIDI 55-76, no two consecutive equal), velocity 40-120, equal
    shares of the clip with a short gap of silence after it; partial k has amplitude
    velocity / 127 * 0.4 / k under an attack-release envelope. f0_hz holds the note's pitch
    (and the last pitch through the gaps, as a pitch tracker would).

    Returns:
      dict of float32 arrays: 'audio' `[n, n_samples]`; 'f0_hz', 'f0_confidence',
      'loudness_db', 'power_db' `[n, n_frames]`; 'note_active_velocities' (velocity, 0-127, at
      the sounding pitch), 'note_active_frame_indices' (1 at the sounding pitch),
      'note_onsets', 'note_offsets' (1 at a note's first / last frame) `[n, n_frames, 128]`;
      'instrument_id' int32 `[n]`; plus 'pitches' and 'velocities' `[n, n_notes]` (the notes).
    """
    from ddsp_models import spectral_ops

    rng = np.random.default_rng(seed)
    n_samples = int(round(seconds * sample_rate))
    n_frames = int(round(seconds * FRAME_RATE))
    hop = n_samples // n_frames
    frames_per_note = n_frames // n_notes
    gap = max(1, frames_per_note // 8)
    audio = np.zeros([n_examples, n_samples])
    f0_hz = np.zeros([n_examples, n_frames])
    velocities_roll = np.zeros([n_examples, n_frames, N_PITCHES])
    active = np.zeros_like(velocities_roll)
    onsets = np.zeros_like(velocities_roll)
    offsets = np.zeros_like(velocities_roll)
    pitches = np.zeros([n_examples, n_notes])
    velocities = np.zeros([n_examples, n_notes])
    for i in range(n_examples):
        pitch = None
        for j in range(n_notes):
            choices = [p for p in range(55, 77) if p != pitch]
            pitch = int(rng.choice(choices))
            velocity = int(rng.integers(40, 121))
            pitches[i, j], velocities[i, j] = pitch, velocity
            start = j * frames_per_note
            stop = start + frames_per_note - gap  # note frames [start, stop)
            f0_hz[i, start:] = 440.0 * 2.0 ** ((pitch - 69) / 12)
            velocities_roll[i, start:stop, pitch] = velocity
            active[i, start:stop, pitch] = 1.0
            onsets[i, start, pitch] = 1.0
            offsets[i, stop - 1, pitch] = 1.0
            n = (stop - start) * hop
            t = np.arange(n) / sample_rate
            envelope = np.minimum(t / 0.01, 1.0) * np.minimum((t[-1] - t) / 0.01, 1.0)
            hz = f0_hz[i, start]
            note = sum(0.4 / k * np.sin(2 * np.pi * k * hz * t + rng.uniform(0, 6.28))
                       for k in range(1, n_harmonics + 1) if k * hz < sample_rate / 2)
            audio[i, start * hop:start * hop + n] = velocity / 127.0 * envelope * note
    audio = audio.astype(np.float32)
    loudness = np.asarray(spectral_ops.compute_loudness(audio, sample_rate=sample_rate, frame_rate=FRAME_RATE,
                                                        use_tf=False), np.float32)[:, :n_frames]
    power = np.asarray(spectral_ops.compute_power(audio, sample_rate=sample_rate, frame_rate=FRAME_RATE),
                       np.float32)[:, :n_frames]
    return {
        "audio": audio,
        "f0_hz": f0_hz.astype(np.float32),
        "f0_confidence": np.ones([n_examples, n_frames], np.float32),
        "loudness_db": loudness,
        "power_db": power,
        "note_active_velocities": velocities_roll.astype(np.float32),
        "note_active_frame_indices": active.astype(np.float32),
        "note_onsets": onsets.astype(np.float32),
        "note_offsets": offsets.astype(np.float32),
        "instrument_id": rng.integers(0, n_instruments, size=n_examples).astype(np.int32),
        "pitches": pitches.astype(np.float32),
        "velocities": velocities.astype(np.float32),
    }


def midi_shrink_bindings(seconds: float = 0.5, width: int = 8) -> list[str]:
    """gin bindings that shrink the models/midiae configs: short clips, narrow layers."""
    time_steps = int(round(seconds * FRAME_RATE))
    n_samples = int(round(seconds * 16000))
    return shrink_bindings(seconds=seconds, width=width) + [
        f"F0PowerPreprocessor.time_steps = {time_steps}",
        f"MidiToHarmonicDecoder.rnn_channels = {width}",
        f"MidiToHarmonicDecoder.ch = {width}",
        "MidiToHarmonicDecoder.layers_per_stack = 1",
        f"HarmonicToMidiEncoder.rnn_channels = {width}",
        f"HarmonicToMidiEncoder.ch = {width}",
        "HarmonicToMidiEncoder.layers_per_stack = 1",
        f"ExpressionEncoder.rnn_channels = {width}",
        f"ExpressionEncoder.ch = {width}",
        "synth_z/ExpressionEncoder.z_dims = 4",
        "note_z/ExpressionEncoder.z_dims = 4",
        "OneHotEncoder.z_dims = 4",
        f"FcStackOut.ch = {width}",
        "FcStackOut.layers = 1",
        "FcStackOut.n_out = 8",
        f"FilteredNoiseReverb.reverb_length = {n_samples // 4}",
        "FilteredNoiseReverb.n_frames = 16",
        "FilteredNoiseReverb.n_filter_banks = 8",
    ]


MIDI_ENCODER_MIXIN = "models/midiae/mixins/midi_encoder.gin"


def make_midi_model(gin_files, bindings=()):
    """A fresh model from config files (gin cleared first, parsed in order) plus bindings."""
    import gin

    from ddsp_models.training import models
    from ddsp_models.training.config import parse_gin

    gin.clear_config()
    parse_gin(list(gin_files), list(bindings))
    return models.get_model()
