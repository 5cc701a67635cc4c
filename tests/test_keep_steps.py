"""train.keep_every: checkpoints/step_<N>.pt, --step N, Translator.from_checkpoint(RUN_DIR, step=N)."""
import shutil

import pytest
import torch
from PIL import Image

from helpers import RECIPE, mean_level_difference
from unpaired import Translator, UnpairedError
from unpaired.cli import main
from unpaired.recipe.config import load_recipe
from unpaired.engine.trainer import train


def test_keep_every_keeps_the_generators_of_each_step(kept_run):
    folder = kept_run / "checkpoints"
    assert sorted(p.name for p in folder.glob("*.pt")) == ["best.pt", "latest.pt", "step_2.pt", "step_4.pt"]
    kept = torch.load(folder / "step_2.pt", weights_only=True)
    latest = torch.load(folder / "latest.pt", weights_only=True)
    assert kept["step"] == 2 and latest["step"] == 4
    assert set(kept["nets"]) == {"g_ab", "g_ba"}  # the translators only
    assert not {"optimizers", "objective_state", "rng"} & set(kept)  # it translates; it does not resume
    assert kept["config"] == latest["config"] and kept["translators"] == latest["translators"]
    assert "cpu fp32, 2 threads" in kept["device_line"]  # the run's first line rides along (no name, no folder)
    assert "forest_abstract" not in kept["device_line"] and str(kept_run) not in kept["device_line"]
    step4 = torch.load(folder / "step_4.pt", weights_only=True)
    for name in ("g_ab", "g_ba"):  # the last kept step is the latest model
        for key, value in step4["nets"][name].items():
            assert torch.equal(value, latest["nets"][name][key])


def test_translate_at_a_kept_step(kept_run, tmp_path):
    image = Image.open(next((kept_run.parent / "data" / "testA").iterdir()))
    t2 = Translator.from_checkpoint(kept_run, step=2, precision="fp32")
    t4 = Translator.from_checkpoint(kept_run, step=4, precision="fp32")
    latest = Translator.from_checkpoint(kept_run, precision="fp32")
    assert (t2.step, t4.step, latest.step) == (2, 4, 4)
    assert mean_level_difference(t4(image), latest(image)) == 0
    assert mean_level_difference(t2(image), t4(image)) > 0.5  # two steps of training apart
    src = tmp_path / "in.png"
    image.save(src)
    assert main(["translate", str(kept_run), str(src), "--step", "2", "--precision", "fp32", "--no-progress"]) == 0
    written = kept_run / "translated_a2b_step2" / "in.png"  # beside the latest's translated_a2b/, not in it
    assert mean_level_difference(Image.open(written), t2(image)) == 0
    shutil.rmtree(written.parent)


def test_an_unknown_step_lists_the_kept_ones(kept_run, tmp_path, capsys):
    with pytest.raises(UnpairedError) as err:
        Translator.from_checkpoint(kept_run, step=3)
    message = str(err.value)
    assert str(kept_run) in message and "step 3" in message and "2, 4" in message and "holds step 4" in message
    src = tmp_path / "in.png"
    Image.new("RGB", (32, 32)).save(src)
    assert main(["translate", str(kept_run), str(src), "--step", "3", "--out", str(tmp_path / "o")]) == 2
    assert "keeps steps 2, 4" in " ".join(capsys.readouterr().err.split())
    assert main(["translate", str(kept_run / "checkpoints" / "latest.pt"), str(src), "--step", "2",
                 "--out", str(tmp_path / "o")]) == 2  # a step names a run directory's checkpoint
    assert "give the run directory" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "o").exists()


def test_eval_at_a_kept_step(kept_run, capsys):
    assert main(["eval", str(kept_run), "--step", "2", "--extractor", "tiny", "--precision", "fp32"]) == 0
    import json

    summary = json.loads((kept_run / "eval_step2" / "metrics.json").read_text())
    assert summary["step"] == 2 and summary["checkpoint"].endswith("step_2.pt")
    shutil.rmtree(kept_run / "eval_step2")


def test_keep_every_is_off_by_default_and_the_quick_preview_keeps_four():
    assert load_recipe(RECIPE).train.keep_every == 0
    quick = load_recipe(RECIPE, quick=True).train
    assert quick.keep_every == 250 and quick.max_steps // quick.keep_every == 4
    with pytest.raises(UnpairedError, match="train.keep_every"):
        load_recipe(RECIPE, ["train.keep_every=-1"])


@pytest.mark.slow
def test_a_resumed_run_drops_the_kept_steps_of_the_run_that_died(tiny_recipe):
    """A killed run can leave step_3.pt behind without a latest.pt of step 3: the resumed run
    removes it at its start and writes step 3 again, from its own training."""
    common = ("train.keep_every=1", "train.precision=fp32")
    first = train(tiny_recipe(*common, "train.max_steps=2"))
    folder = first.out_dir / "checkpoints"
    shutil.copy(folder / "step_2.pt", folder / "step_3.pt")  # what the dead run wrote after step 2
    stale = torch.load(folder / "step_3.pt", weights_only=True)
    train(tiny_recipe(*common), resume=True)
    assert sorted(p.name for p in folder.glob("step_*.pt")) == ["step_1.pt", "step_2.pt", "step_3.pt", "step_4.pt"]
    redone = torch.load(folder / "step_3.pt", weights_only=True)
    assert redone["step"] == 3
    assert any(not torch.equal(new, old) for new, old in zip(redone["nets"]["g_ab"].values(),
                                                               stale["nets"]["g_ab"].values()))
    # the report the resumed run refreshed shows every step of the one history, 1 to 4
    html = (first.out_dir / "report.html").read_text()
    assert all(f"<th>step {s}" in html for s in (1, 2, 3, 4))
