"""Training end to end: the run directory, checkpoints, resume, signals."""
import csv
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

from unpaired import UnpairedError
from unpaired.store import checkpoint
from unpaired.engine.trainer import Trainer, train

from helpers import RECIPE, TINY


@pytest.mark.slow
def test_short_run_leaves_samples_metrics_and_checkpoint(tiny_recipe, tmp_path):
    result = train(tiny_recipe())
    run = tmp_path / "run"
    assert result.step == 4 and result.checkpoint == run / "checkpoints" / "latest.pt"
    assert (run / "config.yaml").read_text().startswith("name: forest_abstract")
    samples = sorted(p.name for p in (run / "samples").iterdir())
    assert samples == ["step_0000002.png", "step_0000004.png"]
    grid = Image.open(run / "samples" / "step_0000004.png")
    # 2 samples per direction -> 4 rows of real | translated | reconstructed (32 px + padding)
    assert grid.size == (3 * 34 + 2, 4 * 34 + 2)
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    for r in rows:
        for key in ("g_adv_ab", "cycle_a", "idt_b", "g_total", "d_a", "d_b", "lr"):
            assert math.isfinite(float(r[key]))  # present and a finite number
    state = torch.load(result.checkpoint, weights_only=True)
    assert state["step"] == 4 and set(state["nets"]) == {"g_ab", "g_ba", "d_a", "d_b"}
    assert set(state["optimizers"]) == {"g", "d"} and set(state["objective_state"]["pools"]) == {"a", "b"}
    assert state["config"]["generator"]["params"] == {"ngf": 4, "n_blocks": 1}
    assert state["plugins"]["generator"]["name"] == "resnet"
    assert state["plugins"]["generator"]["source"] == "builtin"
    assert {"torch", "python"} <= set(state["rng"])
    assert not [p for p in (run / "checkpoints").iterdir() if p.name != "latest.pt"]


@pytest.mark.slow
def test_checkpoint_alone_rebuilds_the_generators(tiny_recipe):
    from unpaired.engine.assemble import assemble
    from unpaired.recipe.config import from_container

    result = train(tiny_recipe())
    state = checkpoint.load(result.checkpoint)
    model = assemble(from_container(state["config"]), channels=state["channels"]).objective
    model.g_ab.load_state_dict(state["nets"]["g_ab"])
    assert model.g_ab(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def weights(path):
    return torch.load(path, weights_only=True)["nets"]


@pytest.mark.slow
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tiny_recipe, tmp_path):
    # a pool smaller than the steps, so the pool's random swaps are exercised too
    common = ("objective.params.pool_size=2", "train.log_every=1", "data.batch_size=2")
    full = train(tiny_recipe(*common, out="full"))
    train(tiny_recipe(*common, "train.max_steps=2", out="split"))
    resumed = train(tiny_recipe(*common, out="split"), resume=True)
    assert resumed.step == 4
    a, b = weights(full.checkpoint), weights(resumed.checkpoint)
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    rows = list(csv.DictReader(open(tmp_path / "split" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]


@pytest.mark.slow
def test_resume_with_loader_workers_matches(tiny_recipe):
    common = ("data.num_workers=2", "objective.params.pool_size=1")
    full = train(tiny_recipe(*common, out="full"))
    train(tiny_recipe(*common, "train.max_steps=3", out="split"))
    resumed = train(tiny_recipe(*common, out="split"), resume=True)
    a, b = weights(full.checkpoint), weights(resumed.checkpoint)
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


def test_existing_run_is_not_overwritten(tiny_recipe):
    train(tiny_recipe("train.max_steps=1"))
    with pytest.raises(UnpairedError, match="--resume"):
        Trainer(tiny_recipe())
    with pytest.raises(UnpairedError, match="does not exist"):
        Trainer(tiny_recipe(out="other"), resume=True)
    with pytest.raises(UnpairedError, match="generator"):
        Trainer(tiny_recipe("generator.params={ngf: 8, n_blocks: 1}"), resume=True)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "latest.pt"
    checkpoint.save({"format": checkpoint.FORMAT, "step": 1}, target)

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(UnpairedError, match=r"cannot write .*latest\.pt \(disk full\)"):  # exit 2, not a traceback
        checkpoint.save({"format": checkpoint.FORMAT, "step": 2}, target)
    assert checkpoint.load(target)["step"] == 1  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]  # no temporary file left


def test_checkpoint_loading_executes_no_code(tmp_path):
    evil = tmp_path / "evil.pt"

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"format": 1, "x": Boom()}, evil)
    with pytest.raises(UnpairedError, match="cannot be read"):
        checkpoint.load(evil)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_continues(image_root, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "unpaired", "run", str(RECIPE), *TINY, f"data.params.root={image_root}",
            f"out_dir={out}", "train.max_steps=100000", "train.checkpoint_every=100000"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = out / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, output
    assert "stopped by SIGTERM" in output
    state = checkpoint.load(out / "checkpoints" / "latest.pt")
    assert state["step"] >= 2
    resumed = train(tiny_recipe_from(image_root, out, f"train.max_steps={state['step'] + 1}"), resume=True)
    assert resumed.step == state["step"] + 1


def tiny_recipe_from(image_root, out, *overrides):
    from helpers import tiny_recipe

    return tiny_recipe(image_root, out, *overrides)
