"""Heuristics turning a model's synthesizer controls into notes (the original DDSP's
`ddsp.training.heuristics`, under its gin names, e.g. for its eval/heuristic.gin).

Controls of one example (numpy or tensors): ``f0_hz`` `[n_frames(, 1)]` (Hz), harmonic
amplitudes (``harmonic/controls/amplitudes`` as `ProcessorGroup` outputs name them, or the
original's nested ``controls['harmonic']['controls']['amplitudes']``) `[n_frames(, 1)]`
(linear), and ``audio`` `[n_samples]` for the power heuristic.

A binarizer (`midi_heuristic`, `midi_heuristic_power`) marks the frames where a note sounds;
`segment_notes` cuts the marked runs into notes whose pitch is `pick_f0_f` of the run's f0
(rounded MIDI) and whose times are frame / frame_rate seconds. Notes come as a
`NoteSequence` (``.notes``: `Note(pitch, start_time, end_time, velocity)`, ``.total_time``),
mirroring the attributes of the original's note_seq objects.
"""
import dataclasses

import numpy as np

from ddsp_models.gin_utils import register

DEFAULT_FRAME_RATE = 250  # Hz
SEMITONE_CHANGE = 0.75  # MIDI: an f0 jump larger than this across a stride starts a new note


@dataclasses.dataclass
class Note:
    pitch: int           # MIDI
    start_time: float    # s
    end_time: float      # s
    velocity: int = 127  # MIDI (the heuristics do not estimate it)


@dataclasses.dataclass
class NoteSequence:
    notes: list = dataclasses.field(default_factory=list)
    total_time: float = 0.0  # s


def _squeeze(value) -> np.ndarray:
    return np.squeeze(np.asarray(value.numpy() if hasattr(value, "numpy") else value))


def harmonic_amplitudes(controls: dict) -> np.ndarray:
    """Harmonic amplitudes `[n_frames]` of one example's controls (either naming)."""
    if "harmonic/controls/amplitudes" in controls:
        return _squeeze(controls["harmonic/controls/amplitudes"])
    try:
        return _squeeze(controls["harmonic"]["controls"]["amplitudes"])
    except (KeyError, TypeError):
        raise ValueError("heuristics: the controls need the harmonic amplitudes "
                         "('harmonic/controls/amplitudes'); they hold " f"{sorted(controls)}") from None


def _f0_hz(controls: dict) -> np.ndarray:
    if "f0_hz" not in controls:
        raise ValueError(f"heuristics: the controls need 'f0_hz'; they hold {sorted(controls)}")
    return _squeeze(controls["f0_hz"]).astype(np.float64)


# ------------------------------------------------------------------ note pickers
@register("heuristics")
def mean_f0(controls, start: int, stop: int) -> float:
    """Mean f0 (Hz) over frames [start, stop)."""
    return float(np.mean(_f0_hz(controls)[start:stop]))


@register("heuristics")
def median_f0(controls, start: int, stop: int) -> float:
    """Median f0 (Hz) over frames [start, stop)."""
    return float(np.median(_f0_hz(controls)[start:stop]))


@register("heuristics")
def median_amps(controls, start: int, stop: int) -> float:
    """Median harmonic amplitude over frames [start, stop)."""
    return float(np.median(harmonic_amplitudes(controls)[start:stop]))


# ------------------------------------------------------------------ binarizers
def remove_short(is_on, min_samples: int = 20) -> np.ndarray:
    """`is_on` with every run of True shorter than `min_samples` that ends before the last
    frame set to False (a run reaching the end is kept, as in the original)."""
    is_on = np.array(is_on, bool)
    run = 0
    for i, on in enumerate(is_on):
        if on:
            run += 1
            continue
        if 0 < run < min_samples:
            is_on[i - run:i] = False
        run = 0
    return is_on


def pad_for_frame(vec, mode: str, frame_width: int) -> np.ndarray:
    """`vec` padded so that width-`frame_width` frames at stride 1 give one frame per value:
    'front' (frame i ends at i), 'center' (centred on i) or 'end' (starts at i). The pads
    repeat the first / last value truncated to an integer, as the original does."""
    if mode == "front":
        widths = (frame_width - 1, 0)
    elif mode == "center":
        widths = (frame_width // 2, frame_width - frame_width // 2 - 1)
    elif mode == "end":
        widths = (0, frame_width - 1)
    else:
        raise ValueError(f"pad_for_frame `mode` must be 'front', 'center' or 'end', got {mode!r}")
    vec = np.asarray(vec)
    return np.pad(vec, widths, mode="constant", constant_values=(int(vec[0]), int(vec[-1])))


def _frames(vec, frame_width: int) -> np.ndarray:
    """Stride-1 frames `[len(vec) - frame_width + 1, frame_width]`."""
    return np.lib.stride_tricks.sliding_window_view(vec, frame_width)


def _pooled_outliers(values, frame_width: int, num_devs: float, pad_mode: str) -> np.ndarray:
    """True where a value lies above its neighbourhood's mean - num_devs * std."""
    frames = _frames(pad_for_frame(values, pad_mode, frame_width), frame_width)
    return frames.mean(axis=-1) - num_devs * frames.std(axis=-1) < values


@register("heuristics")
def amp_pooled_outliers(controls, frame_width: int = 80, num_devs: float = 2.0, pad_mode: str = "center"):
    """Frames whose log harmonic amplitude is not num_devs stds below its neighbours' mean."""
    return _pooled_outliers(np.log(harmonic_amplitudes(controls)), frame_width, num_devs, pad_mode)


@register("heuristics")
def strided_freq_change(controls, frame_widths=(2, 4, 8, 16, 32), pad_mode: str = "front"):
    """False at note boundaries: frames where f0 moved by more than 0.75 semitones over a
    stride of each width (marked once, by the first width that sees the change), and where
    f0 is 0."""
    from ddsp_models import core

    f0 = _f0_hz(controls)
    f0_midi = np.asarray(core.hz_to_midi(f0))
    transitions = np.ones(len(f0), bool)
    for width in frame_widths:
        frames = _frames(pad_for_frame(f0_midi, pad_mode, width), width)
        changes = np.abs(frames[:, 0] - frames[:, -1]) > SEMITONE_CHANGE
        unmarked = _frames(pad_for_frame(transitions, pad_mode, width), width).all(axis=-1)
        transitions[np.flatnonzero(unmarked & changes)] = False
    return transitions & (f0 > 0)


@register("heuristics")
def power_pooled_outliers(controls, frame_width: int = 80, num_devs: float = 2.5, pad_mode: str = "center",
                          sample_rate: int = 16000):
    """Frames whose power (256-sample frames of `controls['audio']`, dB shifted by +120) is
    not num_devs stds below its neighbours' mean, and positive; as many frames as f0."""
    from ddsp_models import core, spectral_ops

    if "audio" not in controls:
        raise ValueError(f"power_pooled_outliers: the controls need 'audio'; they hold {sorted(controls)}")
    n_frames = len(_f0_hz(controls))
    audio = _squeeze(controls["audio"]).astype(np.float32)
    frame_rate = sample_rate * n_frames / len(audio)
    power = np.asarray(spectral_ops.compute_power(
        audio, sample_rate, frame_rate, 256, padding="same")) + core.LD_RANGE
    power = power[:n_frames]
    return np.asarray(_pooled_outliers(power, frame_width, num_devs, pad_mode) & (power > 0))


@register("heuristics")
def midi_heuristic(controls):
    """Note frames: f0 steady (`strided_freq_change`) and amplitude not a dip
    (`amp_pooled_outliers`), runs shorter than 10 frames removed."""
    return remove_short(strided_freq_change(controls) & amp_pooled_outliers(controls), min_samples=10)


@register("heuristics")
def midi_heuristic_power(controls):
    """As `midi_heuristic`, with the audio's power instead of the amplitudes."""
    return remove_short(strided_freq_change(controls) & power_pooled_outliers(controls), min_samples=10)


# ------------------------------------------------------------------ segmentation
def segment_notes(binarize_f, pick_f0_f, pick_amps_f, controls, frame_rate: float = DEFAULT_FRAME_RATE):
    """The notes of one example's controls (see the module docstring)."""
    from ddsp_models import core

    sequence = NoteSequence()
    on = np.asarray(binarize_f(controls), bool).reshape(-1)
    padded = np.concatenate([[False], on, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    for start, stop in zip(edges[::2], edges[1::2]):
        f0 = pick_f0_f(controls, start=int(start), stop=int(stop))
        pick_amps_f(controls, start=int(start), stop=int(stop))  # computed, not used (as the original)
        pitch = int(np.round(float(core.hz_to_midi(f0))))
        sequence.notes.append(Note(pitch, start / frame_rate, stop / frame_rate))
    sequence.total_time = len(on) / frame_rate
    return sequence


def unbatch(batch: dict) -> list:
    """A dict of batched arrays (nested dicts too; None values dropped) -> one dict per example."""
    examples = []
    for key, value in batch.items():
        if value is None:
            continue
        if not isinstance(value, dict):
            value = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
            if value.ndim == 0:  # not batched (e.g. a scalar loss): skipped
                continue
        parts = unbatch(value) if isinstance(value, dict) else list(value)
        if not examples:
            examples = [{} for _ in parts]
        if len(parts) != len(examples):
            raise ValueError(f"unbatch: '{key}' has {len(parts)} examples, others {len(examples)}")
        for example, part in zip(examples, parts):
            example[key] = part
    return examples


@register("heuristics")
def segment_notes_batch(binarize_f=midi_heuristic, pick_f0_f=mean_f0, pick_amps_f=median_amps, controls_batch=None,
                        frame_rate: float = DEFAULT_FRAME_RATE) -> list:
    """`segment_notes` of every example of a batch of controls -> list of `NoteSequence`."""
    if controls_batch is None:
        raise ValueError("segment_notes_batch: `controls_batch` (a dict of batched controls) is required")
    return [segment_notes(binarize_f, pick_f0_f, pick_amps_f, controls, frame_rate)
            for controls in unbatch(controls_batch)]


def notes_to_pianoroll(sequence: NoteSequence, n_frames: int, frame_rate: float = DEFAULT_FRAME_RATE) -> np.ndarray:
    """`[n_frames, 128]` roll with each note's velocity over its frames."""
    roll = np.zeros((n_frames, 128), np.float32)
    for note in sequence.notes:
        start, stop = round(note.start_time * frame_rate), round(note.end_time * frame_rate)
        if 0 <= note.pitch < 128:
            roll[start:stop, note.pitch] = note.velocity
    return roll
