"""dvc.yaml end to end: `dvc repro` of a tiny params file in a temporary git + DVC
repository runs every stage (prepare -> ... -> evaluate, sample -> report); a second `dvc repro` does
nothing; `dvc exp run -S train.ae.steps=...` continues the persisted ae run."""
import json
import os
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = ("ae", "midiae", "zmidiae", "inverse")
TINY_NET = {"rnn_channels": 8, "mlp_units": 8, "mlp_layers": 1}
TINY_PARAMS = {
    "data": {"n_melodies": 3, "melody_seconds": 2.0, "clip_seconds": 1.0, "hop_seconds": 1.0,
             "instruments": ["flute", "clarinet", "violin"],
             "splits": {"train": 0.34, "valid": 0.33, "test": 0.33},
             "batch_size": 2, "max_workers": 2, "log_every_s": 0.0},
    "train": {"batch_size": 1, "chunk_steps": 2, "steps_per_summary": 1,
              "ae": {"steps": 2, "rnn_channels": 8, "mlp_units": 8, "mlp_layers": 1,
                     "n_harmonics": 8, "noise_bands": 8, "reverb_seconds": 0.05},
              "midiae": {"steps": 1, **TINY_NET},
              "zmidiae": {"steps": 1, "z_dims": 2, **TINY_NET},
              "inverse": {"steps": 1, "n_sinusoids": 4, "n_harmonics": 8, "noise_bands": 8,
                          **TINY_NET,
                          "gin_params": ["SpectralLoss.fft_sizes = (512, 128)",
                                         "ResnetSinusoidalEncoder.fft_size = 512",
                                         "ResnetSinusoidalEncoder.mel_bins = 32"]}},
    "evaluate": {"batch_size": 2},
    "sample": {"n_clips": 1},
    "transfer": {"seconds": 2.0},
    "export": {"ir_rates": []},
}


def _merged(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merged(base[key], value) if isinstance(value, dict) and \
            isinstance(base.get(key), dict) else value
    return out


def _run(args, cwd, env):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-4000:]}\n" \
                                   f"{result.stderr[-6000:]}"
    return result.stdout + result.stderr


def test_dvc_repro_runs_every_stage_then_nothing_then_an_experiment_continues(
        tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    repo = tmp_path / "repo"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("ddsp_models", "pipelines"):
        shutil.copytree(os.path.join(ROOT, folder), repo / folder, ignore=ignore)
    shutil.copy(os.path.join(ROOT, "dvc.yaml"), repo / "dvc.yaml")
    with open(os.path.join(ROOT, "params.yaml")) as f:
        params = _merged(yaml.safe_load(f), TINY_PARAMS)  # DVC wants every listed key
    with open(repo / "params.yaml", "w") as f:
        yaml.safe_dump(params, f)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(repo)
    env["DVC_NO_ANALYTICS"] = "1"
    env["DDSP_CREPE_WEIGHTS_DIR"] = os.path.join(ROOT, ".cache", "crepe")
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()  # the test server: no server per stage
    dvc = [sys.executable, "-m", "dvc"]
    _run(["git", "init", "-q"], repo, env)
    _run(["git", "config", "user.name", "ddsp test"], repo, env)
    _run(["git", "config", "user.email", "ddsp-test@localhost"], repo, env)
    _run(dvc + ["init", "-q"], repo, env)
    _run(dvc + ["config", "core.analytics", "false"], repo, env)

    first = _run(dvc + ["repro"], repo, env)
    for stage in ("prepare", "features", "dataset", "train_ae", "train_midiae",
                  "train_zmidiae", "train_inverse", "evaluate", "sample", "transfer", "export",
                  "report"):
        assert f"Running stage '{stage}'" in first, stage
    for run in RUNS:
        with open(repo / "metrics" / f"{run}.json") as f:
            metrics = json.load(f)
        assert metrics["run"] == run and metrics["spectral_loss"] > 0
        with open(repo / "samples" / run / "samples.json") as f:
            samples = json.load(f)
        assert os.path.isfile(repo / samples["resynthesis"][0]["resynth"])
        assert (samples["transfer"] is None) == (run == "inverse")
        assert os.path.isfile(repo / "plots" / run / "losses.png")
    # Whole-recording transfer through each run, export of the ae run.
    for run in ("ae", "midiae", "zmidiae"):
        with open(repo / "transfers" / run / "transfer.json") as f:
            record = json.load(f)
        assert record["transfer"]["seconds"] == 2.0
        assert os.path.isfile(repo / record["transfer"]["output"])
        assert ("midi" in record) == (run != "ae")
    with open(repo / "exported" / "ae" / "metadata.json") as f:
        assert json.load(f)["sample_rate"] == 16000
    for name in ("predict_controls", "synthesize", "extract_features"):
        assert os.path.isfile(repo / "exported" / "ae" / "tflite" / f"{name}.tflite")
    assert os.path.isfile(repo / "exported" / "ae" / "saved_model" / "saved_model.pb")
    # The step of each run is the one params.yaml asks for.
    assert json.load(open(repo / "metrics" / "ae.json"))["step"] == 2
    # The report page: every run's metrics, curves, spectrograms and audio, nothing missing.
    page = (repo / "reports" / "index.html").read_text(encoding="utf-8")
    assert 'id="problems"' not in page
    for run in RUNS:
        with open(repo / "metrics" / f"{run}.json") as f:
            loss = json.load(f)["spectral_loss"]
        assert f'data-run="{run}" data-metric="spectral_loss" data-value="{json.dumps(loss)}"' \
            in page
        assert f'id="run-{run}"' in page
    # The whole-recording transfers and the export: every audio file and PNG they wrote.
    def files_of(folder, extensions):
        return sum(name.lower().endswith(extensions) for run in RUNS
                   for _, _, names in os.walk(repo / folder / run) for name in names)

    stage_audio = files_of("transfers", (".wav",)) + files_of("exported", (".wav",))
    stage_images = files_of("transfers", (".png",)) + files_of("exported", (".png",))
    assert files_of("transfers", (".wav",)) >= 3  # one transfer per controllable run at least
    # 4 runs x (original + resynthesis), 3 transfers x (source + transfer), the stages' audio.
    assert page.count("<audio ") == 4 * 2 + 3 * 2 + stage_audio
    # A loss curve, a clip's and a transfer's spectrograms per run (no transfer for inverse),
    # and the validation plots training wrote: f0 for every run, piano rolls for the two
    # MIDI models, sinusoids vs harmonics for InverseSynthesis; the stages' PNGs.
    assert page.count('src="data:image/') == (4 * 3 - 1) + 4 + 2 + 1 + stage_images
    assert page.count("<h3>Validation clip 1, step ") == 4
    assert page.count('alt="midiae: notes: ground truth vs predicted"') == 1
    assert page.count('alt="inverse: sinusoids vs harmonics"') == 1
    assert "no previous: not in the last commit" in page  # nothing committed yet

    second = _run(dvc + ["repro"], repo, env)
    assert "Running stage" not in second
    status = _run(dvc + ["status"], repo, env)
    assert "up to date" in status

    # An experiment with more ae steps continues the persisted run from its checkpoint.
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-q", "-m", "tiny pipeline"], repo, env)
    experiment = _run(dvc + ["exp", "run", "-S", "train.ae.steps=3", "train_ae"], repo, env)
    assert "Running stage 'train_ae'" in experiment
    with open(repo / "runs" / "ae" / "train_summary.json") as f:
        summary = json.load(f)
    assert summary["step"] == 3
    assert [(c["start_step"], c["end_step"]) for c in summary["chunks"]] == [(2, 3)]
    shown = _run(dvc + ["exp", "show", "--no-pager", "--csv"], repo, env)
    assert "train.ae.steps" in shown.splitlines()[0]
