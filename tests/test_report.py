"""The report stage (pipelines/report.py): one self-contained page of metrics (against the
previous commit), loss curves, spectrograms and audio players."""
import base64
import io
import json
import os
import re

import numpy as np
import soundfile as sf

from pipelines.report import build_report, fmt
from report_fixtures import (
    CLIPS,
    CURRENT,
    report_folders,
    report_params,
    write_pipeline_outputs,
)


def _data_urls(text: str, tag: str) -> list[str]:
    return re.findall(rf'<{tag} [^>]*src="(data:[^"]+)"', text)


def test_report_embeds_metrics_diff_curves_spectrograms_and_playable_audio(tmp_path,
                                                                            monkeypatch):
    write_pipeline_outputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    summary = build_report(report_params(), "reports", report_folders())
    assert summary["path"] == os.path.join("reports", "index.html")
    assert summary["problems"] == []
    assert (summary["n_audio"], summary["n_images"]) == (4, 4)
    text = open(summary["path"], encoding="utf-8").read()
    assert len(text) == summary["bytes"] < 1_000_000
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r'(src|href)="(?!data:|#)', text)
    # The metrics table: every number of metrics/ae.json, shown with 4 digits.
    for key in ("step", "spectral_loss", "loudness_l1_db", "f0_l1_semitones", "note_f1"):
        cell = re.search(rf'<td data-run="ae" data-metric="{key}" data-value="([^"]*)">'
                         rf'([^<]*)</td>', text)
        assert cell, key
        assert json.loads(cell.group(1).replace("&quot;", '"')) == CURRENT[key]
        assert cell.group(2) == fmt(CURRENT[key])
    assert fmt(5.123456) == "5.123" and fmt(None) == "-"
    assert re.search(r'<td class="name">step</td><td>400</td><td>800</td><td class="info">'
                     r'\+400</td>', text)
    # ... and against the committed (previous) version: lower loss is better.
    assert re.search(r'<td>ae</td><td class="name">spectral_loss</td><td>6</td><td>5.123</td>'
                     r'<td class="better">-0.8765</td>', text)
    assert re.search(r'<td>ae</td><td class="name">loudness_l1_db</td><td>2</td><td>2.25</td>'
                     r'<td class="worse">\+0.25</td>', text)
    assert re.search(r'<td>ae</td><td class="name">f0_l1_semitones</td><td>0.4817</td>'
                     r'<td>0.4817</td><td class="same">0</td>', text)
    # Audio players: Ogg Vorbis that decodes to the clip's length and pitch.
    audio = _data_urls(text, "audio")
    assert len(audio) == 4
    seconds = [float(s) for s in re.findall(r'data-seconds="([0-9.]+)"', text)]
    assert seconds == [CLIPS[k][2] for k in ("original", "resynth", "source", "transfer")]
    for url, key in zip(audio, ("original", "resynth", "source", "transfer")):
        assert url.startswith("data:audio/ogg;base64,")
        decoded, rate = sf.read(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        _, hz, length = CLIPS[key]
        assert rate == 16000 and decoded.shape == (int(length * 16000),)
        spectrum = np.abs(np.fft.rfft(decoded))
        assert abs(np.argmax(spectrum) * 16000 / decoded.size - hz) <= 16000 / decoded.size
    images = _data_urls(text, "img")
    assert len(images) == 4
    # The newest validation f0 plot of the run's TensorBoard summaries (step 800, 900 px).
    assert "<h3>Validation clip 1, step 800</h3>" in text
    f0_url = re.search(r'<img src="([^"]+)" alt="ae: f0: target vs resynthesis', text).group(1)
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(f0_url.split(",", 1)[1]))) as picture:
        assert picture.size == (900, 300)
    assert all(u.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for u in images)


def test_bad_and_missing_inputs_are_listed_and_the_rest_is_written(tmp_path, monkeypatch):
    write_pipeline_outputs(tmp_path, git=False)
    monkeypatch.chdir(tmp_path)
    # midiae: samples.json points at a corrupt wav and a missing PNG; no metrics, no curve.
    os.makedirs("samples/midiae/resynth")
    with open("samples/midiae/resynth/c_original.wav", "wb") as f:
        f.write(b"RIFF\x24\x08\x00\x00WAVEfmt garbage")
    with open("samples/midiae/samples.json", "w") as f:
        json.dump({"run": "midiae", "resynthesis": [
            {"clip": "c", "original": "samples/midiae/resynth/c_original.wav",
             "resynth": "samples/ae/resynth/test_clip_resynth.wav",
             "spectrogram": "samples/midiae/resynth/c.png"}], "transfer": None}, f)
    # A folder a later stage writes (transfers/<run>/) is picked up.
    os.makedirs("transfers/ae")
    sf.write("transfers/ae/recording.wav", np.zeros(4000, np.float32), 16000)
    summary = build_report(report_params(["ae", "midiae"]), "out", report_folders())
    problems = "\n".join(summary["problems"])
    assert "metrics/midiae.json: missing" in problems
    assert "samples/midiae/resynth/c_original.wav" in problems
    assert "samples/midiae/resynth/c.png" in problems
    assert "plots/midiae/losses.png: missing" in problems
    text = open(summary["path"], encoding="utf-8").read()
    assert 'id="problems"' in text and "c_original.wav" in text
    # Everything readable is still there: ae's 4 clips, midiae's resynthesis, the transfer.
    assert summary["n_audio"] == 6 and 'data-file="transfers/ae/recording.wav"' in text
    assert 'data-seconds="0.250000"' in text
    # Outside a git repository there is no previous commit to compare with.
    assert "no previous: not a git repository" in text


def test_large_pictures_are_embedded_as_jpeg_small_ones_as_png(tmp_path):
    import matplotlib.image as mpimg
    from PIL import Image

    from ddsp_models.training.flow_utils import png_data_url

    rng = np.random.default_rng(0)
    noisy = tmp_path / "noisy.png"  # incompressible: ~1 MB as PNG
    mpimg.imsave(noisy, rng.uniform(size=(500, 800, 3)))
    flat = tmp_path / "flat.png"
    mpimg.imsave(flat, np.full((50, 80, 3), 0.5))
    assert os.path.getsize(noisy) > 150_000 > os.path.getsize(flat)
    big, small = png_data_url(str(noisy)), png_data_url(str(flat))
    assert small.startswith("data:image/png;base64,")
    assert big.startswith("data:image/jpeg;base64,") and len(big) < os.path.getsize(noisy)
    with Image.open(io.BytesIO(base64.b64decode(big.split(",", 1)[1]))) as picture:
        assert picture.size == (800, 500) and picture.format == "JPEG"
    assert png_data_url(str(noisy), max_png_bytes=None).startswith("data:image/png;")
