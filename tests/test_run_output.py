"""What a run tells its user as it ends and what the report shows of the user's own images:
the next steps as commands that work when copied, ``train.watch`` rows in the report's
timeline, and the hints that are only given when they apply."""
import pytest
import logging
import shlex

import numpy as np
from PIL import Image

from unpaired.cli import main

from helpers import RECIPE, TINY


def run_main(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_a_finished_run_ends_with_next_steps_that_work(image_root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    code, out, err = run_main(capsys, "run", RECIPE, *TINY, f"data.params.root={image_root}", f"out_dir={run}",
                              "train.max_steps=2", "train.precision=fp32")
    assert code == 0, err
    said = (out + err).splitlines()
    start = said.index("next:")
    steps = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in said[start + 1:]}
    assert set(steps) == {"translate your own images", "a page to try images on", "the report, in a browser",
                          "train longer"}, steps
    assert steps["the report, in a browser"] == str(run / "report.html") and (run / "report.html").is_file()
    # train longer: the command as printed continues the run in its folder
    longer = shlex.split(steps["train longer"])
    assert longer[:2] == ["unpaired", "run"] and "--resume" in longer and "train.max_steps=8" in longer
    code, out, err = run_main(capsys, *[a if a != "train.max_steps=8" else "train.max_steps=3" for a in longer[1:]])
    assert code == 0, err
    assert "resuming" in out + err and "step 3" in out + err
    # translate: the printed command with a real folder in place of PHOTOS/
    translate = shlex.split(steps["translate your own images"])
    translate[translate.index("PHOTOS/")] = str(image_root / "testA")
    code, _, err = run_main(capsys, *translate[1:])
    assert code == 0 and len(list((tmp_path / "translated").glob("*.png"))) == 6, err


@pytest.mark.slow
def test_watched_images_are_rows_of_the_report(image_root, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    for i in range(2):
        Image.fromarray(np.full((40, 52, 3), 60 * i + 40, np.uint8)).save(mine / f"holiday_{i}.jpg")
    run = tmp_path / "run"
    code, _, err = run_main(capsys, "run", RECIPE, *TINY, f"data.params.root={image_root}", f"out_dir={run}",
                            "train.max_steps=2", "train.precision=fp32", "disable_plugins=[progress]",
                            f"train.watch=[{mine}]")
    assert code == 0, err
    html = (run / "report.html").read_text()
    assert "holiday_0.jpg (watched) (A → B)" in html and "holiday_1.jpg (watched) (A → B)" in html
    # unpaired report rebuilds the same rows from the recipe
    (run / "report.html").unlink()
    assert main(["report", str(run)]) == 0
    assert "holiday_1.jpg (watched)" in (run / "report.html").read_text()


def test_a_watched_path_that_is_not_there_is_named_before_training(image_root, tmp_path, capsys):
    code, _, err = run_main(capsys, "run", RECIPE, *TINY, f"data.params.root={image_root}",
                            f"out_dir={tmp_path / 'run'}", f"train.watch=[{tmp_path / 'nowhere.jpg'}]")
    assert code == 2 and "train.watch" in err and "nowhere.jpg" in err, err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_data_check_of_a_folder_without_the_layout_suggests_two_folders(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (32, 32)).save(folder / "a.png")
    code, out, err = run_main(capsys, "data", "check", folder)
    assert code != 0 and "--a DIR --b DIR" in out + err and "data.params.a=DIR" in out + err, out + err


def test_the_params_hint_is_given_only_when_no_params_were(caplog):
    from unpaired.recipe.config import load_recipe

    with caplog.at_level(logging.INFO, logger="unpaired"):
        load_recipe(RECIPE, ["discriminator.name=multiscale_patchgan"])
    assert "give discriminator.params.KEY=VALUE" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="unpaired"):
        load_recipe(RECIPE, ["discriminator.name=multiscale_patchgan", "discriminator.params.num_scales=2"])
    assert "are dropped" in caplog.text and "KEY=VALUE" not in caplog.text
