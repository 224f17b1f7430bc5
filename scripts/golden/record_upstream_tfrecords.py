"""Writes TFRecords in the original DDSP 3.7.0's format, and the batch its TFRecordProvider
reads from them, into tests/data/golden/ (the test data of tests/test_data.py).

Run with the original library's environment (TF 2.15, ddsp 3.7.0):

    /work/upstream-venv/bin/python scripts/golden/record_upstream_tfrecords.py

The records come out of the original's own `ddsp.training.data_preparation.prepare_tfrecord_lib`
steps (`_add_f0_estimate`, `_add_loudness`, `_split_example`, `_float_dict_to_tfexample`),
called directly instead of through its Apache Beam pipeline (Beam is not installed there: a
stand-in module gives the steps their no-op counters). Two things differ from a real run:

* the audio is synthesised here (a gliding harmonic tone with a fade, deterministic) at both
  the dataset's rate and 16 kHz, instead of being decoded and resampled by pydub;
* CREPE is not installed there, so `crepe.predict` is replaced by a deterministic stand-in
  with CREPE's framing (one frame of 1024 samples every hop of the padded 16 kHz audio, as
  `spectral_ops.compute_f0` pads it): f0 from the frame's zero crossings, confidence from its
  RMS. The values only have to be the same for both libraries; the frame counts are the
  original's.

Outputs (about 0.37 MB; the original needs whole seconds: example_secs * rate must be an
integer):
  upstream_same.tfrecord     2 examples of 1 s, 16 kHz, 250 Hz frames, 'same' framing (250)
  upstream_center.tfrecord   1 example of 1 s, 8 kHz audio + audio_16k, centred frames (251)
  upstream_batches.npz       per file, the batch the original TFRecordProvider returns:
                             ``<file>/<key>`` for the frame features, and for the audio
                             ``<file>/<key>.sha256`` (of the float32 bytes) and ``.shape``;
                             also the original `spectral_ops.compute_power` of its audio_16k
                             with the same framing (``<file>/power_db``, 1024-sample frames,
                             80 dB range).
"""
import hashlib
import os
import sys
import types

import numpy as np

EXAMPLE_SECS = 1
HOP_SECS = 1
FRAME_RATE = 250
POWER_FRAME_SIZE = 1024
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "golden")
FILES = {  # name: (sample_rate, centered, seconds of audio)
    "upstream_same": (16000, False, 2.0),
    "upstream_center": (8000, True, 1.0),
}


def install_beam_stand_in():
    """`apache_beam` with just the metric counters the preparation steps increment."""
    counter = types.SimpleNamespace(inc=lambda *args: None)
    metrics = types.SimpleNamespace(Metrics=types.SimpleNamespace(counter=lambda *args: counter))
    sys.modules["apache_beam"] = types.SimpleNamespace(metrics=metrics)


def crepe_stand_in(audio, sr, viterbi=False, step_size=10, center=True, verbose=0):
    """`crepe.predict`'s outputs with CREPE's framing, from zero crossings and RMS."""
    assert not center and sr == 16000
    hop = int(sr * step_size / 1000)
    n_frames = 1 + (len(audio) - 1024) // hop
    frames = np.stack([audio[i * hop:i * hop + 1024] for i in range(n_frames)])
    crossings = np.sum(np.abs(np.diff(np.signbit(frames).astype(np.int8), axis=1)), axis=1)
    f0_hz = crossings * sr / (2.0 * 1024)
    confidence = np.clip(4.0 * np.sqrt(np.mean(frames ** 2, axis=1)), 0.0, 1.0)
    time = np.arange(n_frames) * step_size / 1000.0
    return time, f0_hz, confidence, np.zeros((n_frames, 360), np.float32)


def tone(seconds: float, sample_rate: int) -> np.ndarray:
    """A tone gliding from 220 to 330 Hz with three harmonics, faded out in its last 30%."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    f0 = 220.0 + 110.0 * t / seconds
    phase = 2.0 * np.pi * np.cumsum(f0) / sample_rate
    audio = sum(0.3 / k * np.sin(k * phase) for k in (1, 2, 3))
    envelope = np.clip((seconds - t) / (0.3 * seconds), 0.0, 1.0)
    return (audio * envelope).astype(np.float32)


def main():
    install_beam_stand_in()
    import crepe

    crepe.predict = crepe_stand_in
    import tensorflow as tf
    from ddsp import spectral_ops
    from ddsp.training import data
    from ddsp.training.data_preparation import prepare_tfrecord_lib as lib

    os.makedirs(OUT_DIR, exist_ok=True)
    batches = {}
    for name, (sample_rate, centered, seconds) in FILES.items():
        example = {"audio": tone(seconds, sample_rate), "audio_16k": tone(seconds, 16000)}
        example = lib._add_f0_estimate(example, FRAME_RATE, centered, viterbi=True)
        example = lib._add_loudness(example, FRAME_RATE, n_fft=512, center=centered)
        path = os.path.join(OUT_DIR, f"{name}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for window in lib._split_example(example, sample_rate, FRAME_RATE, EXAMPLE_SECS, HOP_SECS, centered):
                writer.write(lib._float_dict_to_tfexample(window).SerializeToString())
        provider = data.TFRecordProvider(path, example_secs=EXAMPLE_SECS, sample_rate=sample_rate,
                                         frame_rate=FRAME_RATE, centered=centered)
        batch = next(iter(provider.get_batch(batch_size=8, shuffle=False, repeats=1, drop_remainder=False)))
        for key, value in batch.items():
            value = value.numpy()
            if key.startswith("audio"):
                batches[f"{name}/{key}.sha256"] = np.array(hashlib.sha256(value.astype("<f4").tobytes()).hexdigest())
                batches[f"{name}/{key}.shape"] = np.array(value.shape)
            else:
                batches[f"{name}/{key}"] = value
        batches[f"{name}/power_db"] = spectral_ops.compute_power(
            batch["audio_16k"], sample_rate=16000, frame_rate=FRAME_RATE, frame_size=POWER_FRAME_SIZE,
            padding="center" if centered else "same").numpy()
        print(name, {key: value.shape for key, value in batch.items()})
    np.savez_compressed(os.path.join(OUT_DIR, "upstream_batches.npz"), **batches)


if __name__ == "__main__":
    main()
