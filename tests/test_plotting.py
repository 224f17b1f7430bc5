"""plotting: loss curves and spectrogram panels written as PNGs of the promised size."""
import matplotlib.image as mpimg
import numpy as np
import pytest

from conftest import tone
from ddsp_models.training.plotting import plot_loss_curve, plot_spectrograms


def test_loss_curve_png_has_the_figure_size(tmp_path):
    records = [{"step": s, "losses": {"spectral_loss": 10.0 / s, "total_loss": 12.0 / s}, "steps_per_sec": 3.0}
               for s in range(1, 21)]
    records[5]["losses"]["total_loss"] = float("nan")  # skipped
    path = plot_loss_curve(records, tmp_path / "plots" / "loss.png", title="ae")
    assert path == str(tmp_path / "plots" / "loss.png")
    image = mpimg.imread(path)
    assert image.shape[:2] == (450, 800)
    assert np.std(image[..., :3]) > 0.01  # not a blank canvas


def test_loss_curve_with_a_negative_loss_still_plots(tmp_path):
    records = [{"step": 1, "losses": {"kl": -0.5}}, {"step": 2, "losses": {"kl": 0.5, "other": 1.0}}]
    path = plot_loss_curve(records, tmp_path / "neg.png", figsize=(4, 3), dpi=50)
    assert mpimg.imread(path).shape[:2] == (150, 200)


def test_spectrograms_png_has_one_panel_per_audio(tmp_path):
    audios = {"original": tone(440.0, 0.5), "resynthesis": tone(660.0, 0.5, amplitude=0.1),
              "silence": np.zeros(8000, np.float32)}
    f0 = {"original": np.full(125, 440.0, np.float32)}
    path = plot_spectrograms(audios, tmp_path / "spec.png", sample_rate=16000, title="clip", f0_hz=f0)
    image = mpimg.imread(path)
    assert image.shape[:2] == (3 * 250, 800)
    assert np.std(image[..., :3]) > 0.01


def test_empty_or_bad_input_raises_naming_the_argument(tmp_path):
    with pytest.raises(ValueError, match="records"):
        plot_loss_curve([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="records"):
        plot_loss_curve([{"losses": {"a": 1.0}}], tmp_path / "x.png")
    with pytest.raises(ValueError, match="audios"):
        plot_spectrograms({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="audios"):
        plot_spectrograms({"stereo": np.zeros([2, 100])}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="f0_hz"):
        plot_spectrograms({"a": tone()}, tmp_path / "x.png", f0_hz={"b": np.zeros(10)})
    assert not (tmp_path / "x.png").exists()
