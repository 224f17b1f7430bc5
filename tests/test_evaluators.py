"""Specification of the evaluators (the original DDSP's gin names) and their loops: loss means,
loudness and f0 errors with known values, TWM's f0, evaluators named by gin, the `evaluate`
loop without a checkpoint, and the evaluate stage running a run's gin-named evaluators."""
import gin
import numpy as np
import pytest

from ddsp_models import spectral_ops
from ddsp_models.training import config, evaluators

SR, FR = 16000, 250


def tone_batch(n=2, seconds=0.256):
    t = np.arange(int(seconds * SR)) / SR
    audio = np.stack([0.4 * np.sin(2 * np.pi * 220.0 * (i + 1) * t) for i in range(n)]).astype(np.float32)
    n_frames = int(seconds * FR)
    return {"audio": audio, "f0_hz": np.array([[220.0 * (i + 1)] * n_frames for i in range(n)], np.float32),
            "f0_confidence": np.full([n, n_frames], 0.9, np.float32),
            "loudness_db": spectral_ops.compute_loudness(audio, SR, FR).numpy()}


class HalfGainModel:
    """Resynthesises the batch's audio at half the amplitude and passes its f0 through."""

    def __init__(self):
        self.calls = 0

    def __call__(self, batch, training=False, return_losses=False):
        self.calls += 1
        outputs = {"f0_hz": batch["f0_hz"][..., None], "out": 0.5 * batch["audio"]}
        return (outputs, {"total_loss": np.float32(self.calls)}) if return_losses else outputs

    def get_audio_from_outputs(self, outputs):
        return outputs["out"]


def test_f0_scores_in_semitones_with_pitch_and_chroma_accuracy():
    ref = np.full([3, 10], 220.0, np.float32)
    conf = np.full([3, 10], 0.9, np.float32)
    conf[2] = 0.1  # no confident frame: NaN
    est = np.stack([ref[0] * 2 ** (0.25 / 12), 2 * ref[1], ref[2]])
    scores = evaluators.f0_scores(ref, est, conf)
    np.testing.assert_allclose(scores["f0_dist"][:2], [0.25, 12.0], atol=1e-4)
    assert scores["raw_pitch_accuracy"][:2].tolist() == [1.0, 0.0]
    assert scores["raw_chroma_accuracy"][:2].tolist() == [1.0, 1.0]
    assert all(np.isnan(v[2]) for v in scores.values())


def test_run_evaluators_averages_losses_and_scores_loudness_and_f0():
    """Half the amplitude is 6.02 dB less loudness; the passed-through f0 is exact."""
    model = HalfGainModel()
    batch = tone_batch()
    metrics = evaluators.run_evaluators(model, [batch, batch], [evaluators.BasicEvaluator, evaluators.F0LdEvaluator],
                                        SR, FR)
    assert model.calls == 2
    assert metrics["losses/total_loss"] == pytest.approx(1.5)  # mean of 1 and 2
    assert metrics["metrics/loudness/loudness_db"] == pytest.approx(6.02, abs=0.05)
    assert metrics["metrics/f0/f0_dist"] == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="mode"):
        evaluators.run_evaluators(model, [batch], [], SR, FR, mode="train")
    with pytest.raises(ValueError, match="no batch"):
        evaluators.run_evaluators(model, [], [evaluators.BasicEvaluator], SR, FR)


def test_twm_evaluator_finds_the_fundamental_of_harmonic_sinusoids():
    batch = tone_batch(n=1)
    n_frames = batch["f0_hz"].shape[1]
    k = np.arange(1, 7, dtype=np.float32)
    outputs = {"sinusoidal/controls/frequencies": np.tile(220.0 * k, (1, n_frames, 1)),
               "sinusoidal/controls/amplitudes": np.tile(1.0 / k, (1, n_frames, 1))}
    evaluator = evaluators.TWMEvaluator(SR, FR)
    np.testing.assert_allclose(evaluator.twm_f0(outputs), 220.0)
    evaluator.evaluate(batch, outputs, {})
    assert evaluator.flush(0)["metrics/f0_twm/raw_pitch_accuracy"] == 1.0
    with pytest.raises(ValueError, match="sin_freqs"):
        evaluator.evaluate(batch, {}, {})


def test_evaluator_classes_come_from_gin():
    assert evaluators.bound_evaluator_classes() == []
    config.parse_gin(["eval/basic_f0_ld.gin"], ["F0LdEvaluator.run_f0_crepe = False"])
    classes = evaluators.bound_evaluator_classes()
    assert [c.__name__ for c in classes] == ["BasicEvaluator", "F0LdEvaluator"]
    assert classes[1](SR, FR).run_f0_crepe is False  # built with its gin bindings


def test_evaluate_without_a_checkpoint_scores_the_current_weights(tmp_path):
    from ddsp_models.training.data import InMemoryProvider

    provider = InMemoryProvider(tone_batch(n=2))
    metrics = evaluators.evaluate(provider, HalfGainModel(), [evaluators.F0LdEvaluator], save_dir=str(tmp_path),
                                  batch_size=2, num_batches=3)
    assert metrics["metrics/loudness/loudness_db"] == pytest.approx(6.02, abs=0.05)
    assert (tmp_path / "summaries" / "eval").is_dir()


def test_the_evaluate_stage_runs_the_evaluators_a_runs_gin_files_name(monkeypatch):
    from ddsp_models.training import run_config
    from pipelines import evaluate as evaluate_stage

    info = type("Info", (), {"sample_rate": SR, "frame_rate": FR})()
    monkeypatch.setattr(run_config, "gin_config", lambda params, run, info: (["eval/basic_f0_ld.gin"], []))
    metrics = evaluate_stage.gin_evaluator_metrics({}, "ae", info, HalfGainModel(), [tone_batch()])
    assert metrics["losses/total_loss"] == {"mean": 1.0}
    assert metrics["metrics/loudness/loudness_db"]["mean"] == pytest.approx(6.02, abs=0.05)
    gin.clear_config()  # as loading the next run's model does
    monkeypatch.setattr(run_config, "gin_config", lambda params, run, info: ([], []))
    assert evaluate_stage.gin_evaluator_metrics({}, "ae", info, HalfGainModel(), [tone_batch()]) == {}
