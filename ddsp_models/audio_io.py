"""Audio files and sample rates: the one reader, writer and resampler of the project.

Reading: `load_audio` (a whole file) and `iter_audio_blocks` (block by block) decode any
format soundfile or librosa reads, average the channels and resample to the rate asked
for; `read_wav` reads a WAV file as it is. Writing: `write_wav` and `WavWriter` store float
audio in [-1, 1] as 16-bit PCM (or another soundfile subtype); values beyond full scale
are clipped with a logged warning. Levels: `rms_db`, and `clipping_warning`
(`CLIPPED_LEVEL`, `CLIPPED_SHARE`): the checks the data stages apply to every recording
and clip.

Resampling, one method per domain:
  `resample`     numpy arrays (files, CREPE's `compute_f0`, impulse responses): soxr at
                 `RESAMPLE_QUALITY` ("HQ", librosa's default); the streaming reader uses
                 the same engine and gives the same samples.
  `resample_tf`  tensors inside a model (`PretrainedCREPE`): band-limited FFT
                 resampling, differentiable and tf.function-safe.
"""
from __future__ import annotations

import logging
import os

import numpy as np

from ddsp_models.checks import positive_float

log = logging.getLogger(__name__)

RESAMPLE_QUALITY = "HQ"  # soxr quality of every numpy resampling


def resample(audio, sample_rate: float, target_rate: float) -> np.ndarray:
    """Resamples numpy audio `[..., n_samples]` from `sample_rate` to `target_rate` Hz (soxr,
    `RESAMPLE_QUALITY`; every leading axis is a separate signal).

    Returns `[..., round(n_samples * target_rate / sample_rate)]`, float64 for float64
    input, else float32; the input itself when the rates are equal.
    """
    import soxr  # librosa's default high-quality resampler, without librosa's imports

    rate_in = positive_float("sample_rate", sample_rate)
    rate_out = positive_float("target_rate", target_rate)
    if hasattr(audio, "numpy"):
        audio = audio.numpy()
    array = np.asarray(audio)
    if array.dtype != np.float64:
        array = array.astype(np.float32, copy=False)
    if rate_in == rate_out:
        return array
    if array.ndim == 0:
        raise ValueError("audio: expected [..., n_samples], got a scalar")
    signals = np.ascontiguousarray(array.reshape(-1, array.shape[-1]).T)  # [n, channels]
    out = soxr.resample(signals, rate_in, rate_out, quality=RESAMPLE_QUALITY)
    return np.ascontiguousarray(out.T).reshape(array.shape[:-1] + (-1,))


def resample_tf(audio, sample_rate: float, target_rate: float):
    """Band-limited (FFT) resampling of a float32 tensor `[batch, n_samples]` from
    `sample_rate` to `target_rate` Hz: the spectrum is cut (or zero-padded) to the new
    length's bins. Differentiable; `n_samples` must be static. Returns
    `[batch, round(n_samples * target_rate / sample_rate)]` (the input when the rates are
    equal)."""
    import tensorflow as tf

    rate_in = positive_float("sample_rate", sample_rate)
    rate_out = positive_float("target_rate", target_rate)
    if rate_in == rate_out:
        return audio
    n_in = audio.shape[-1]
    if n_in is None:
        raise ValueError(f"audio: resample_tf needs a static number of samples, got {audio.shape}")
    n_out = int(round(n_in * rate_out / rate_in))
    spectrum = tf.signal.rfft(audio)
    n_bins_out = n_out // 2 + 1
    n_keep = min(n_bins_out, n_in // 2 + 1)
    spectrum = spectrum[:, :n_keep]
    spectrum = tf.pad(spectrum, [[0, 0], [0, n_bins_out - n_keep]])
    return tf.signal.irfft(spectrum, fft_length=[n_out]) * (n_out / n_in)


def rms_db(audio) -> float:
    """Root-mean-square level of `audio` in dBFS (a floor of 1e-20 in power: -200 dB for
    silence)."""
    return float(10.0 * np.log10(np.mean(np.square(audio, dtype=np.float64)) + 1e-20))


CLIPPED_LEVEL = 0.999      # |sample| at or above this counts as full scale
CLIPPED_SHARE = 0.001      # more than this share of full-scale samples: reported as clipped


def clipping_warning(audio: np.ndarray) -> str | None:
    """A warning naming the share of full-scale samples (|x| >= `CLIPPED_LEVEL`) when more
    than `CLIPPED_SHARE` of `audio` is at full scale (clipped), else None."""
    share = float(np.mean(np.abs(audio) >= CLIPPED_LEVEL))
    if share > CLIPPED_SHARE:
        return f"{100 * share:.1f} % of its samples are at full scale (clipped); kept"
    return None


def write_wav(path, audio, sample_rate: int = 16000, subtype: str = "PCM_16") -> str:
    """Write `audio` to a WAV file, creating parent folders.

    Args:
      path: output file (str or PathLike).
      audio: float `[n_samples]` mono or `[n_samples, n_channels]` in [-1, 1] (numpy or
        tensor); samples with |x| > 1 are clipped to +-1 and a warning is logged
        (for integer subtypes; "FLOAT" / "DOUBLE" keep the values as they are).
      sample_rate: samples per second (positive int).
      subtype: soundfile subtype, default "PCM_16".

    Returns:
      the path written, as str.
    """
    import soundfile as sf

    if hasattr(audio, "numpy"):
        audio = audio.numpy()
    try:
        audio = np.asarray(audio, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"audio: expected a float array, got {type(audio).__name__}") from error
    if audio.ndim not in (1, 2) or audio.shape[0] == 0:
        raise ValueError(f"audio: expected [n_samples] or [n_samples, n_channels] with samples, "
                         f"got {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"audio: contains NaN or inf (writing {path})")
    if positive_float("sample_rate", sample_rate) != int(sample_rate):
        raise ValueError(f"sample_rate must be a whole number of Hz, got {sample_rate!r}")
    path = os.fspath(path)
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0 and subtype.upper() not in ("FLOAT", "DOUBLE"):
        log.warning("write_wav %s: peak |x| = %.3f > 1, clipping %d samples", path, peak,
                    int(np.sum(np.abs(audio) > 1.0)))
        audio = np.clip(audio, -1.0, 1.0)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    sf.write(path, audio, int(sample_rate), subtype=subtype)
    return path


def read_wav(path) -> tuple[np.ndarray, int]:
    """(audio float32 `[n_samples]` (mono) or `[n_samples, n_channels]`, sample_rate)."""
    import soundfile as sf

    audio, sample_rate = sf.read(os.fspath(path), dtype="float32", always_2d=False)
    return audio, int(sample_rate)


# Formats libsndfile reads itself (streamed block by block); others go through librosa's
# audioread fallback (decoded whole).
SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".opus")


def load_audio(path, sample_rate: int = 16000) -> np.ndarray:
    """Reads an audio file as float32 mono `[n_samples]` at `sample_rate` Hz.

    soundfile (libsndfile: wav, flac, ogg, opus, mp3, aiff); librosa's audioread fallback
    for other formats (m4a, ...). Channels are averaged; other rates are resampled (`resample`'s
    soxr quality). Raises ValueError naming the file when it cannot be decoded, holds no
    samples, or holds non-finite values.
    """
    blocks = list(iter_audio_blocks(path, sample_rate))
    audio = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    if audio.size == 0:
        raise ValueError(f"{path}: no audio samples")
    return audio


def iter_audio_blocks(path, sample_rate: int = 16000, block_seconds: float = 10.0):
    """Yields an audio file as consecutive float32 mono blocks `[<= block samples]` at
    `sample_rate` Hz, reading (and resampling) it piece by piece, so a long file never sits
    in memory whole (formats libsndfile cannot read are decoded whole first). Errors as
    `load_audio` (ValueError naming the file)."""
    import soundfile as sf

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such audio file")
    try:
        handle = sf.SoundFile(path)
    except Exception as sf_error:  # noqa: BLE001 - fall back to librosa/audioread
        if os.path.splitext(path)[1].lower() in SOUNDFILE_EXTENSIONS:
            raise ValueError(f"{path}: cannot decode audio ({sf_error})") from sf_error
        import librosa

        try:
            audio, rate = librosa.load(path, sr=None, mono=True)
        except Exception as error:  # noqa: BLE001
            raise ValueError(f"{path}: cannot decode audio ({sf_error}; {error})") from error
        yield from _resampled_blocks(path, iter([np.asarray(audio, np.float32)]), int(rate),
                                     sample_rate, block_seconds)
        return
    with handle:
        rate = int(handle.samplerate)
        frames = max(1, int(block_seconds * rate))

        def read():
            try:
                for block in handle.blocks(blocksize=frames, dtype="float32", always_2d=True):
                    yield block.mean(axis=1)
            except Exception as error:  # noqa: BLE001
                raise ValueError(f"{path}: cannot decode audio ({error})") from error

        yield from _resampled_blocks(path, read(), rate, sample_rate, block_seconds)


def _resampled_blocks(path, blocks, rate: int, sample_rate: int, block_seconds: float):
    stream = None
    if rate != sample_rate:  # the engine and quality of `resample`, chunk by chunk
        import soxr

        stream = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32",
                                     quality=RESAMPLE_QUALITY)
    size = max(1, int(block_seconds * sample_rate))
    pending = np.zeros(0, np.float32)
    for block in blocks:
        block = np.asarray(block, np.float32)
        if not np.all(np.isfinite(block)):
            raise ValueError(f"{path}: non-finite samples")
        if stream is not None:
            block = stream.resample_chunk(block, last=False)
        pending = np.concatenate([pending, block])
        while pending.size >= size:
            yield pending[:size]
            pending = pending[size:]
    if stream is not None:
        tail = stream.resample_chunk(np.zeros(0, np.float32), last=True)
        pending = np.concatenate([pending, tail])
    if pending.size:
        yield pending


class WavWriter:
    """Writes a WAV file (whatever the name ends in) block by block: float audio in [-1, 1]
    -> 16-bit PCM by default; samples beyond full scale are clipped and counted, with one
    warning at `close`."""

    def __init__(self, path, sample_rate: int = 16000, subtype: str = "PCM_16"):
        import soundfile as sf

        self.path = os.fspath(path)
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        self.subtype = subtype
        self.clipped = 0
        self.peak = 0.0
        self.samples = 0
        self._file = sf.SoundFile(self.path, "w", int(sample_rate), 1, subtype=subtype,
                                  format="WAV")

    def write(self, block) -> None:
        block = np.asarray(block, np.float32).reshape(-1)
        if not np.all(np.isfinite(block)):
            raise ValueError(f"audio: contains NaN or inf (writing {self.path})")
        if block.size:
            self.peak = max(self.peak, float(np.max(np.abs(block))))
        if self.subtype.upper() not in ("FLOAT", "DOUBLE"):
            over = np.abs(block) > 1.0
            if over.any():
                self.clipped += int(over.sum())
                block = np.clip(block, -1.0, 1.0)
        self._file.write(block)
        self.samples += block.size

    def close(self) -> str:
        if not self._file.closed:
            self._file.close()
            if self.clipped:
                log.warning("write %s: peak |x| = %.3f > 1, clipped %d samples", self.path,
                            self.peak, self.clipped)
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
