"""Frame features (CREPE f0 with Viterbi, confidence, A-weighted loudness, power) of an audio
stream of any length, computed chunk by chunk with context either side of each chunk, so the
frames equal those of one pass while only one chunk of audio is held.

Units: audio float32 at `sample_rate` Hz; frames at `frame_rate` Hz; f0 in Hz, confidence
0..1, loudness / power in dB.
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np

DEFAULT_CHUNK_SECONDS = 20.0
DEFAULT_CONTEXT_SECONDS = 1.0
PLOT_SECONDS = 30.0  # audio kept from the start of a recording, for a spectrogram


@dataclasses.dataclass
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

