"""Evaluation during training: metrics in metrics.csv, checkpoints/best.pt at the best value."""
import csv

import pytest
import torch

from unpaired import UnpairedError
from unpaired.evaluation.evaluate import better
from unpaired.engine.trainer import Trainer, train

EVAL = ["data.name=synthetic", "data.params={size: 32, n: 16}", "data.test_params={split: test, n: 6}",
        "eval.every=2", "eval.extractor=tiny", "eval.metric=l1_a2b", "train.max_steps=6", "train.log_every=3"]


@pytest.mark.slow
def test_metrics_land_in_csv_and_best_checkpoint_tracks_the_best(tiny_recipe, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="unpaired"):
        result = train(tiny_recipe(*EVAL))
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    evaluated = [r for r in rows if r.get("l1_a2b")]
    assert [int(r["step"]) for r in evaluated] == [2, 4, 6]
    assert {"kid_a2b", "fid_a2b", "cycle_l1_a", "psnr_a2b"} <= set(evaluated[0])
    values = {int(r["step"]): float(r["l1_a2b"]) for r in evaluated}
    best_step = min(values, key=values.get)
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert best["step"] == best_step
    assert best["best"] == {"metric": "l1_a2b", "value": pytest.approx(values[best_step]), "step": best_step}
    report = [r.getMessage() for r in caplog.records if "final" in r.getMessage()]
    assert report and f"best {values[best_step]:.5g} (step {best_step}" in report[-1]
    assert f"final {values[6]:.5g} (step 6" in report[-1]
    latest = torch.load(result.checkpoint, weights_only=True)
    assert latest["best"]["step"] == best_step  # a resumed run keeps tracking the same best


def test_unknown_eval_metric_is_named(tiny_recipe):
    with pytest.raises(UnpairedError, match="eval.metric"):
        Trainer(tiny_recipe(*EVAL, "eval.metric=accuracy"))


def test_better_knows_the_direction():
    assert better("kid_a2b", 0.1, 0.2) and not better("kid_a2b", 0.3, 0.2)
    assert better("psnr_a2b", 30.0, 20.0) and not better("ssim_a2b", 0.1, 0.5)


def test_evaluating_leaves_the_training_random_state_alone(tiny_recipe):
    from unpaired.evaluation.evaluate import Evaluator
    from unpaired.engine.trainer import Trainer

    trainer = Trainer(tiny_recipe())
    evaluator = Evaluator(trainer.test_dataset, extractor="tiny", max_images=4, device="cpu")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    evaluator(trainer.model)
    assert torch.equal(torch.rand(3), expected)
