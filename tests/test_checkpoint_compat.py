"""Checkpoints written by unpaired 0.1.0 (format 1, before objectives were plugins) still
translate, evaluate and resume: tests/fixtures/format1_*.pt were made by that version
(tests/fixtures/make_format1.py)."""
import shutil
from pathlib import Path

import pytest
import torch

from unpaired import UnpairedError, checkpoint
from unpaired.inference.translate import Translator

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OLD = FIXTURES / "format1_cyclegan.pt"


def test_format1_checkpoint_loads_as_a_cyclegan_one():
    state = checkpoint.load(OLD)
    assert torch.load(OLD, weights_only=True)["format"] == 1
    assert state["format"] == checkpoint.FORMAT and state["objective"] == "cyclegan"
    assert set(state["translators"]) == {"a2b", "b2a"}
    assert set(state["objective_state"]["pools"]) == {"a", "b"} and "pools" not in state


@pytest.mark.parametrize("direction", ["a2b", "b2a"])
def test_format1_checkpoint_translates_as_0_1_0_did(direction):
    expected = torch.load(FIXTURES / "format1_cyclegan_outputs.pt", weights_only=True)
    t = Translator.from_checkpoint(OLD, direction=direction, device="cpu", precision="fp32")
    assert torch.equal(t.translate_tensor(expected["input"]), expected[direction])


def test_format1_checkpoint_resumes_to_the_weights_0_1_0_reached(tmp_path):
    # the fixture's run: tiny nets on helpers.make_image_root's images, 2 of 4 steps done
    from helpers import make_image_root, tiny_recipe
    from unpaired.trainer import train

    root = make_image_root(tmp_path / "data")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(OLD, run / "checkpoints" / "latest.pt")
    result = train(tiny_recipe(root, run, "train.max_steps=4", "train.pool_size=2"), resume=True)
    assert result.step == 4
    new = torch.load(result.checkpoint, weights_only=True)
    assert new["format"] == checkpoint.FORMAT
    want = torch.load(FIXTURES / "format1_cyclegan_step4.pt", weights_only=True)["nets"]
    for net in want:
        for k in want[net]:
            assert torch.equal(new["nets"][net][k], want[net][k]), (net, k)


def test_format1_checkpoint_evaluates(tmp_path, capsys):
    from helpers import make_image_root
    from unpaired import cli

    root = make_image_root(tmp_path / "data")
    code = cli.main(["eval", str(OLD), "--extractor", "tiny", "--device", "cpu", "--data", str(root),
                     "--out", str(tmp_path / "eval")])
    assert code == 0, capsys.readouterr()
    import json

    scores = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert {"kid_a2b", "kid_b2a", "cycle_a", "cycle_b"} <= set(scores)


def test_an_unknown_future_format_is_named(tmp_path):
    state = torch.load(OLD, weights_only=True)
    state["format"] = 99
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(UnpairedError, match="format 99, a newer unpaired may read it"):
        checkpoint.load(tmp_path / "future.pt")
