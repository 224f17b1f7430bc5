"""Pipeline outputs for the report tests (not a test module): metrics (a committed older
version and the workspace one), a loss curve, and the samples of one run: tones of known
pitch and length as wav files with their spectrograms, laid out as the stages write them.
"""
import json
import os
import subprocess

import soundfile as sf

from conftest import tone

CURRENT = {"run": "ae", "step": 800, "split": "test", "n_examples": 3,
           "spectral_loss": 5.123456, "loudness_l1_db": 2.25, "f0_l1_semitones": 0.4817,
           "f0_outlier_ratio": 0.2311, "note_f1": None}
PREVIOUS = {**CURRENT, "step": 400, "spectral_loss": 6.0, "loudness_l1_db": 2.0,
            "f0_l1_semitones": 0.4817}
# Clips: (file, frequency Hz, seconds).
CLIPS = {"original": ("samples/ae/resynth/test_clip_original.wav", 440.0, 1.0),
         "resynth": ("samples/ae/resynth/test_clip_resynth.wav", 440.0, 1.0),
         "source": ("samples/ae/transfer/source_alto_sax.wav", 330.0, 0.75),
         "transfer": ("samples/ae/transfer/transfer_from_alto_sax.wav", 330.0, 0.75)}


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)


def write_metrics(root, record, run="ae"):
    os.makedirs(os.path.join(root, "metrics"), exist_ok=True)
    with open(os.path.join(root, "metrics", f"{run}.json"), "w") as f:
        json.dump(record, f, indent=1)


def write_pipeline_outputs(root, git: bool = True) -> dict:
    """Outputs of a finished `ae` run under `root` (paths relative to it, as the stages
    write them when run from the repository root). With `git`, `root` is a repository
    whose last commit holds `PREVIOUS` as metrics/ae.json; the workspace holds `CURRENT`.
    Returns the samples.json record."""
    from ddsp_models.training.plotting import plot_loss_curve, plot_spectrograms

    root = str(root)
    os.makedirs(root, exist_ok=True)
    if git:
        _git(root, "init", "-q")
        _git(root, "config", "user.name", "ddsp test")
        _git(root, "config", "user.email", "ddsp-test@localhost")
        write_metrics(root, PREVIOUS)
        _git(root, "add", "metrics/ae.json")
        _git(root, "commit", "-q", "-m", "previous metrics")
    write_metrics(root, CURRENT)
    records = [{"step": s, "losses": {"total_loss": 10.0 / s, "spectral_loss": 8.0 / s}}
               for s in range(50, 850, 50)]
    plot_loss_curve(records, os.path.join(root, "plots", "ae", "losses.png"), title="ae")
    audio = {}
    for key, (path, hz, seconds) in CLIPS.items():
        audio[key] = tone(hz, seconds, amplitude=0.5 if key in ("original", "source") else 0.3)
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        sf.write(os.path.join(root, path), audio[key], 16000, subtype="PCM_16")
    resynth_png = "samples/ae/resynth/test_clip.png"
    transfer_png = "samples/ae/transfer/transfer_from_alto_sax.png"
    plot_spectrograms({"original": audio["original"], "ae resynthesis": audio["resynth"]},
                      os.path.join(root, resynth_png), title="ae: test_clip")
    plot_spectrograms({"source": audio["source"], "ae driven by it": audio["transfer"]},
                      os.path.join(root, transfer_png), title="ae: transfer")
    record = {"run": "ae",
              "resynthesis": [{"clip": "test_clip", "original": CLIPS["original"][0],
                               "resynth": CLIPS["resynth"][0], "spectrogram": resynth_png}],
              "transfer": {"source": CLIPS["source"][0], "transfer": CLIPS["transfer"][0],
                           "spectrogram": transfer_png, "octave_shift": -1,
                           "loudness_shift_db": 3.5}}
    with open(os.path.join(root, "samples", "ae", "samples.json"), "w") as f:
        json.dump(record, f, indent=1)
    write_validation_f0(os.path.join(root, "runs", "ae", "summaries", "valid"))
    return record


def write_validation_f0(log_dir, steps=(400, 800)) -> None:
    """TensorBoard f0 images of validation clip 1 at `steps` (the newest is 900 px wide,
    the older 700, to tell them apart)."""
    import tensorflow as tf

    from ddsp_models.training.plotting import plot_f0
    from ddsp_models.training.summaries import figure_png, image_summary

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for i, step in enumerate(steps):
            width = 9.0 if i == len(steps) - 1 else 7.0
            png = figure_png(plot_f0, {"target": [440.0] * 50, "resynthesis": [445.0] * 50},
                             figsize=(width, 3.0))
            image_summary("f0/1", png, step)
    writer.flush()


def report_params(runs=("ae",)) -> dict:
    """Params of the report stage for `runs`."""
    from ddsp_models.training.params import load_params

    runs = list(runs)
    return load_params(None, {"evaluate": {"runs": runs}, "sample": {"runs": runs},
                              "report": {"max_audio_seconds": 60.0}})


def report_folders():
    """The folders `write_pipeline_outputs` writes (relative, as in dvc.yaml)."""
    from ddsp_models.training.run_config import Folders

    return Folders(metrics_dir="metrics", samples_dir="samples", plots_dir="plots",
                   runs_dir="runs", transfers_dir="transfers", exported_dir="exported")
