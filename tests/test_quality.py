"""A ground-truth benchmark of our own: a short unpaired run on `synthetic` must translate A->B
clearly better than doing nothing, scored against the hidden true counterparts. Also the pieces
of `bench/quality.py --objectives` (per-structure scores, scoring at steps and time marks) and a
tiny run of it with the three objectives.

The run is the engine's: recipes/forest_abstract.yaml with the synthetic dataset, tiny nets and
a few hundred CPU steps. bench/quality.py follows the same numbers over more steps.
"""
import pytest
import torch

from unpaired.evaluation import metrics
from unpaired.engine.build import build_dataset
from unpaired.engine.trainer import Trainer

from helpers import RECIPE

STEPS = 200

SETUP = [
    "data.name=synthetic", "data.params={size: 32, n: 64}", "data.test_params={split: test, n: 32}",
    "data.num_workers=0", "generator.params={ngf: 8, n_blocks: 2}", "discriminator.params={ndf: 8, n_layers: 2}",
    f"train.max_steps={STEPS}", "train.log_every=100", "train.sample_every=100000",
    "train.checkpoint_every=100000", "disable_plugins=[progress]",
]


def translate(g, a):
    mode = g.training
    with torch.no_grad():
        out = g.eval()(a)
    g.train(mode)
    return out


@pytest.mark.slow
def test_short_unpaired_run_beats_doing_nothing(tmp_path):
    from unpaired.recipe.config import load_recipe

    # Tiny nets gain nothing from a second thread, and lose a lot when the cores are shared.
    torch.set_num_threads(1)
    cfg = load_recipe(RECIPE, [*SETUP, f"out_dir={tmp_path / 'run'}"])
    test = build_dataset(cfg, test=True)  # aligned: item B is the true translation of item A
    a = torch.stack([test[i]["A"] for i in range(len(test))])
    truth = torch.stack([test[i]["B"] for i in range(len(test))])
    trainer = Trainer(cfg)
    untrained = translate(trainer.model.g_ab, a)
    trainer.run()
    fake = translate(trainer.model.g_ab, a)

    l1_model, l1_nothing = metrics.l1(fake, truth).mean().item(), metrics.l1(a, truth).mean().item()
    psnr_model, psnr_nothing = metrics.psnr(fake, truth).mean().item(), metrics.psnr(a, truth).mean().item()
    report = f"L1 {l1_model:.4f} vs {l1_nothing:.4f} (do nothing); PSNR {psnr_model:.2f} vs {psnr_nothing:.2f} dB"
    # measured (seed 0, 200 steps, BENCHMARKS.md "Translation quality"): L1 0.087 vs 0.20, PSNR 19.2 vs 12.3 dB
    assert l1_model < 0.6 * l1_nothing, report
    assert psnr_model > psnr_nothing + 4.0, report
    # an untrained generator outputs near-constant grey, which already beats doing nothing on
    # L1 (the hidden mapping moves colours far): training must do clearly better than that too
    l1_untrained = metrics.l1(untrained, truth).mean().item()
    assert l1_model < 0.7 * l1_untrained, f"{report}; untrained L1 {l1_untrained:.4f}"


# --------------------------------------------------------------------------- bench/quality.py --objectives
import math  # noqa: E402

import pytest  # noqa: E402

from helpers import REPO  # noqa: E402


@pytest.fixture
def quality(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "bench"))  # quality.py imports its sibling train_step
    import quality

    return quality


def test_structure_scores_by_hand(quality):
    a = torch.zeros(2, 3, 2, 2)
    truth = a.clone()
    truth[0, :, 0, 0] = 1.0  # error 1 in [-1, 1] = 0.5 on the [0, 1] scale, at one pixel
    truth[1, 0, 1, 1] = -2.0 / 3  # one channel of three off by 2/3: 1/9 on the [0, 1] scale
    masks = {"background": torch.zeros(2, 2, 2, dtype=torch.bool), "line_1px": torch.zeros(2, 2, 2, dtype=torch.bool)}
    masks["line_1px"][0, 0, 0] = masks["line_1px"][1, 1, 1] = True
    masks["background"] = ~masks["line_1px"]
    masks["line_2px"] = torch.zeros(2, 2, 2, dtype=torch.bool)  # no pixel: not scored
    g = torch.nn.Identity()
    s = quality.structure_scores(g, a, truth, masks)
    assert s["line_1px"] == pytest.approx((0.5 + 1 / 9) / 2)
    assert s["background"] == 0.0
    assert s["lines"] == pytest.approx(s["line_1px"])  # the union of the line masks
    assert math.isnan(s["line_2px"])
    assert s["all"] == pytest.approx((0.5 + 1 / 9) / 8)  # the masks partition: all is their pixel-weighted mean


def test_score_run_scores_at_steps_and_time_marks_and_stops(quality):
    now = [0.0]
    calls = []

    def score(model):
        calls.append(now[0])
        now[0] += 100.0  # scoring time does not count as training time
        return {"l1": len(calls)}

    run = type("Run", (), {"objective": None})()
    scorer = quality.ScoreRun(score, steps=[0, 3], marks=[2.5, 1.0], clock=lambda: now[0])
    scorer.on_train_start(run)
    with pytest.raises(quality.StopRun):
        for step in range(1, 100):
            now[0] += 1.0  # one second per training step
            scorer.on_step(run, step)
    assert step == 3  # both marks and the last step reached at step 3
    assert sorted(scorer.at_step) == [0, 3]
    assert scorer.at_mark[1.0][0] == 1 and scorer.at_mark[2.5][0] == 3
    assert scorer.at_mark[2.5][1] is scorer.at_step[3][0]  # one scoring serves both
    assert scorer.at_step[3][1] == pytest.approx(3.0) and len(calls) == 3


@pytest.mark.slow
def test_objectives_smoke_equal_steps_and_equal_time(quality, tmp_path, capsys):
    threads = torch.get_num_threads()
    out = tmp_path / "q.md"
    try:
        rc = quality.main(["--objectives", "cyclegan,cut,fastcut,unsb", "--size", "32", "--steps", "0,2", "--n", "8",
                           "--test-n", "4", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    text = capsys.readouterr().out
    written = out.read_text()
    assert "`python bench/quality.py --objectives cyclegan,cut,fastcut,unsb" in written and "(a) **Equal steps**" in written
    steps_part = text.split("(a) **Equal steps**")[1].split("(b) **Equal training time**")[0]
    time_part = text.split("(b) **Equal training time**")[1].split("Per run")[0]
    runs_part = text.split("Per run")[1]
    for name, passes in (("cyclegan", 1), ("cut", 1), ("unsb", 5)):  # generator passes per translated image
        row = next(line for line in runs_part.splitlines() if line.startswith(f"| {name} | "))
        cells = row.strip("| ").split(" | ")
        assert float(cells[5]) > 0 and float(cells[6]) == passes, row
    for name in ("cyclegan", "cut", "fastcut", "unsb"):
        row = next(line for line in steps_part.splitlines() if line.startswith(f"| {name} | 2 |"))
        values = [float(v) for v in row.strip("| ").split(" | ")[2:]]
        assert len(values) == 11 and all(math.isfinite(v) for v in values), row
        assert any(line.startswith(f"| {name} | ") and "not reached" not in line for line in time_part.splitlines())
    assert "lines 1px" in text and "Best at step 2" in text
