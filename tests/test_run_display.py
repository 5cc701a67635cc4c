"""What a run shows while and after it trains: the ETA, the figure's rows, the first line and the held-out note, eval without a test split, the README's preview."""
import logging
import math

import pytest

from helpers import RECIPE, TINY, make_image_root

from unpaired import UnpairedError, hookimpl
from unpaired.cli import main


# --------------------------------------------------------------------------- the ETA under load
def test_the_eta_moves_little_when_the_machine_is_busy_for_a_moment():
    from unpaired.plugins.progress import SmoothedRate

    rate = SmoothedRate()
    rate.add(0.5, 20)  # the first window: warm-up, replaced by the second
    for _ in range(10):
        rate.add(10.0, 5)
    assert rate.value == pytest.approx(10.0)
    steady = rate.eta(6000)
    assert steady == "0:10:00"
    rate.add(1.0, 5)  # another process took a core for 5 s: one window 10x slower
    after = 6000 / rate.value
    assert after < 1.3 * 600, after  # the unsmoothed rate said 6000 s
    for _ in range(200):  # a lasting change is followed within minutes (1,000 s here)
        rate.add(5.0, 5)
    assert rate.value == pytest.approx(5.0, rel=0.01)
    assert SmoothedRate().eta(10) == "?"
    assert rate.add(math.nan, 5) == rate.add(0.0, 5) == rate.value  # no rate: nothing changes


# --------------------------------------------------------------------------- the figure
def test_the_figure_spreads_its_images_and_says_what_each_row_is():
    from unpaired.plugins.cut import CUT
    from unpaired.plugins.figure import caption, spread

    assert spread(20) == [0, 10, 19] and spread(2) == [0, 1] and spread(3) == [0, 1, 2]

    class Model:
        pass

    assert caption(Model(), "a2b", 3) == "A -> B: real | translated | reconstructed"
    assert caption(Model(), "b2a", 2) == "B -> A: real | translated"
    cut = CUT.__new__(CUT)
    assert "idt_b" not in caption(cut, "idt_b", 2) and "should stay" in caption(cut, "idt_b", 2)


# --------------------------------------------------------------------------- the first line
def test_the_device_line_comes_first_and_the_held_out_note_after_it(tmp_path, with_plugin, caplog):
    from unpaired.recipe.config import load_recipe
    from unpaired.engine.trainer import train

    root = make_image_root(tmp_path / "data", n=3)
    for split in ("testA", "testB"):
        for f in (root / split).iterdir():
            f.unlink()
        (root / split).rmdir()
    said = []

    class Watch:
        @hookimpl
        def on_train_start(self, run):
            said.append("device line: " + run.description)

    class Collect(logging.Handler):
        def emit(self, record):
            said.append(record.getMessage())

    with_plugin(Watch(), "watch")
    handler = Collect()
    logging.getLogger("unpaired").addHandler(handler)
    caplog.set_level(logging.INFO, logger="unpaired")
    try:
        cfg = load_recipe(RECIPE, [f"data.params.root={root}", f"out_dir={tmp_path / 'run'}", *TINY,
                                   "train.max_steps=1", "disable_plugins=[progress]"])
        train(cfg)
    finally:
        logging.getLogger("unpaired").removeHandler(handler)
    first = next(i for i, s in enumerate(said) if s.startswith("device line: "))
    note = next(i for i, s in enumerate(said) if "training images (not held out)" in s)
    assert first < note and not any("testA" in s for s in said[:first])


def test_eval_without_a_test_split_says_it_scores_training_images(tmp_path, capsys):
    root = make_image_root(tmp_path / "data", n=3)
    for split in ("testA", "testB"):
        for f in (root / split).iterdir():
            f.unlink()
        (root / split).rmdir()
    run = tmp_path / "run"
    assert main(["run", str(RECIPE), f"data.params.root={root}", f"out_dir={run}", *TINY, "train.max_steps=1",
                 "disable_plugins=[progress]"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--extractor", "tiny", "--device", "cpu"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "training images (no held-out split), 3 images per domain" in out
    assert "test split" not in out and "image pairs" not in out


# --------------------------------------------------------------------------- offline eval
def test_offline_eval_suggests_the_tiny_extractor(monkeypatch):
    from unpaired.evaluation import features

    def offline(*args, **kwargs):
        raise UnpairedError("could not download pt_inception.pth: no network.")

    monkeypatch.setattr(features, "download_weights", offline)
    with pytest.raises(UnpairedError) as info:
        features.InceptionFID()
    assert "no network" in str(info.value) and "--extractor tiny" in str(info.value)
    assert "eval.extractor=tiny" in str(info.value) and "not comparable" in str(info.value)


# --------------------------------------------------------------------------- README's figures
def test_readme_shows_the_preview_and_every_time_names_its_machine():
    import re

    from helpers import REPO

    readme = (REPO / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert "docs/preview.jpg" in images and all((REPO / p).is_file() for p in images)
    setup = " ".join(readme.split("## Set-up", 1)[1].split("\n## ", 1)[0].split())
    times = list(re.finditer(r"\d+ min \d+ s", setup))
    assert len(times) >= 3
    for t in times:  # "7 min 34 s on an AMD EPYC ...": no time without its machine
        assert re.match(r"\*{0,2} on (an? |that )", setup[t.end():t.end() + 12]), setup[t.start():t.end() + 40]
    for recipe in (REPO / "recipes").glob("*.yaml"):
        assert "minutes" not in recipe.read_text(), recipe  # one place for times: README, Set-up
