"""Inference on long recordings: wall time, CPU time and peak memory of `inference transfer`
for recordings of several lengths, each in a fresh process (so peak RSS is that run's).

    .venv/bin/python benchmarks/inference_long.py --run-dir runs/ae --minutes 1 10

Writes a 44.1 kHz stereo melody of each length to a temporary folder, runs
``python -m ddsp_models.training.inference transfer`` on it and prints a table. Peak RSS
should not grow with the length (audio is streamed chunk by chunk). Needs a trained run
(or any run folder, e.g. one written by tests/inference_fixtures.py).
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_melody(path: str, minutes: float, sample_rate: int = 44100) -> None:
    """A melody of 0.25-1 s notes (MIDI 55-71) with vibrato, written second by second."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", sample_rate, 2, subtype="PCM_16") as f:
        written, phase = 0.0, 0.0
        while written < minutes * 60.0:
            seconds = min(rng.uniform(0.25, 1.0), minutes * 60.0 - written)
            t = np.arange(int(seconds * sample_rate)) / sample_rate
            pitch = 55 + rng.integers(0, 17) + 0.2 * np.sin(2 * np.pi * 5 * t)
            increments = 2 * np.pi * 440.0 * 2 ** ((pitch - 69) / 12) / sample_rate
            phases = phase + np.cumsum(increments)
            phase = phases[-1] % (2 * np.pi) if phases.size else phase
            envelope = np.minimum(1.0, np.minimum(t, seconds - t) * 30.0)
            x = 0.3 * envelope * (np.sin(phases) + 0.4 * np.sin(2 * phases))
            f.write(np.stack([x, 0.8 * x], 1))
            written += seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--crepe-capacity", default="tiny")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            audio = os.path.join(tmp, f"melody_{minutes:g}min.wav")
            write_melody(audio, minutes)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.monotonic()
            subprocess.run([sys.executable, "-m", "ddsp_models.training.inference", "transfer",
                            "--run-dir", args.run_dir, "--audio", audio,
                            "--out", os.path.join(tmp, "out.wav"), "--quiet", "--no-plot",
                            "--crepe-capacity", args.crepe_capacity],
                           check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
            wall = time.monotonic() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            out_seconds = sf.info(os.path.join(tmp, "out.wav")).duration
            # ru_maxrss of children: the largest child so far (KiB on Linux).
            rows.append((minutes, out_seconds, wall, cpu, after.ru_maxrss / 1024.0))
    print(f"{'minutes':>8} {'output s':>9} {'wall s':>8} {'CPU s':>8} {'CPU s / audio s':>16} "
          f"{'peak RSS MiB (max so far)':>26}")
    for minutes, out_seconds, wall, cpu, rss in rows:
        print(f"{minutes:8g} {out_seconds:9.1f} {wall:8.1f} {cpu:8.1f} {cpu / (minutes * 60):16.3f} "
              f"{rss:26.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
