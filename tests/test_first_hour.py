"""What a newcomer trips over in the first hour (issue 13): each test fails without its fix."""
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, RECIPE, TINY, make_image_root

from unpaired.cli import main


def train_only_root(tmp_path, name="my_data"):
    root = make_image_root(tmp_path / name, n=3)
    for split in ("testA", "testB"):
        for f in (root / split).iterdir():
            f.unlink()
        (root / split).rmdir()
    return root


def quiet(*extra):
    return [*TINY, "train.max_steps=2", "disable_plugins=[progress]", *extra]


# --------------------------------------------------------------------------- 1. testA/testB optional
def test_train_only_folder_trains_with_the_shipped_recipe_and_eval_works(tmp_path, caplog, capsys):
    root = train_only_root(tmp_path)
    assert main(["data", "check", str(root)]) == 0
    assert "OK: ready for training" in capsys.readouterr().out
    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="unpaired"):
        assert main(["run", str(RECIPE), f"data.params.root={root}", f"out_dir={out}", *quiet()]) == 0
    notes = [r.getMessage() for r in caplog.records if "training images" in r.getMessage()]
    assert len(notes) == 1 and "testA" in notes[0]
    assert (out / "samples" / "step_0000002.png").is_file()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="unpaired"):
        assert main(["eval", str(out), "--extractor", "tiny", "--device", "cpu"]) == 0
    assert any("training images" in r.getMessage() for r in caplog.records)
    assert (out / "eval" / "metrics.json").is_file()


# --------------------------------------------------------------------------- 2. the clone's parent folder
def _import_from(cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "import os, unpaired; from unpaired import Translator; print(os.path.realpath(unpaired.__file__))"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)


def test_installed_package_wins_over_a_folder_named_unpaired(tmp_path):
    neutral = _import_from(tmp_path)
    if neutral.returncode != 0 or Path(neutral.stdout.strip()) != REPO / "unpaired" / "__init__.py":
        pytest.skip("unpaired is not installed from this checkout (pip install -e .)")
    (tmp_path / "unpaired" / "plugins").mkdir(parents=True)  # e.g. the clone itself, ~/unpaired
    beside = _import_from(tmp_path)
    assert beside.returncode == 0, beside.stderr
    assert Path(beside.stdout.strip()) == REPO / "unpaired" / "__init__.py"


def test_editable_installs_put_the_package_on_sys_path():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    # strict: a tree of links on sys.path (found before any namespace folder), not a finder
    # appended after the path finder
    assert project["tool"]["distutils"]["editable_wheel"]["mode"] == "strict"
    assert project["tool"]["setuptools"]["package-dir"] == {"unpaired.plugins": "plugins"}
    assert "plugins" not in project["tool"]["setuptools"]["packages"]


# --------------------------------------------------------------------------- 3. relative paths
def test_data_paths_are_found_beside_the_recipes_project_from_anywhere(tmp_path, monkeypatch, caplog):
    from unpaired.config import load_recipe

    monkeypatch.chdir(tmp_path)  # cd ~/elsewhere && unpaired run ~/unpaired/recipes/... --quick
    with caplog.at_level(logging.INFO, logger="unpaired"):
        cfg = load_recipe(RECIPE, [], quick=True)
    assert cfg.data.params.root == str(REPO / "data" / "forest_abstract")
    assert any("not in the current folder" in r.getMessage() for r in caplog.records)
    assert cfg.out_dir == "runs/forest_abstract_quick"  # runs/ lands in the current folder
    (tmp_path / "data" / "forest_abstract").mkdir(parents=True)  # the current folder wins
    assert load_recipe(RECIPE, [], quick=True).data.params.root == "data/forest_abstract"


def test_a_missing_relative_data_folder_names_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(RECIPE), "--quick", "data.params.root=my_data", "train.max_steps=1"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "beside the recipe" in err and "data.params.root=/path/to/my_data" in err


# --------------------------------------------------------------------------- 4. --quick and plugin swaps
def test_a_plugin_swap_does_not_inherit_the_previous_plugins_params(caplog):
    from unpaired import get_registry, hookimpl, register_plugin, unregister_plugin
    from unpaired.config import load_recipe

    class Shallow:
        @staticmethod
        @hookimpl
        def register_generators(register):
            register("shallow_first_hour", lambda in_channels, out_channels, width=8: None)

    with caplog.at_level(logging.INFO, logger="unpaired"):
        cfg = load_recipe(RECIPE, ["generator.name=shallow_first_hour"], quick=True)
    assert cfg.generator.params == {}
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "quick block's generator.params" in said and "ngf" in said
    register_plugin(Shallow, name="shallow_first_hour")
    try:
        get_registry().check_params("generator", "shallow_first_hour", dict(cfg.generator.params))
    finally:
        unregister_plugin("shallow_first_hour")
    # params given with the swap apply; without a swap the quick block still applies
    cfg = load_recipe(RECIPE, ["generator.name=shallow_first_hour", "generator.params.width=4"], quick=True)
    assert cfg.generator.params == {"width": 4}
    cfg = load_recipe(RECIPE, ["generator.name=resnet", "generator.params.ngf=8"], quick=True)
    assert cfg.generator.params == {"ngf": 8, "n_blocks": 6}


# --------------------------------------------------------------------------- 5. the first picture
def test_the_end_of_run_figure_is_readable_and_named_last(tmp_path, capsys):
    from PIL import Image

    root = make_image_root(tmp_path / "data", n=3, size=(300, 260))
    out = tmp_path / "run"
    assert main(["run", str(RECIPE), f"data.params.root={root}", f"out_dir={out}", *TINY, "train.max_steps=2"]) == 0
    figure = out / "figure.png"
    width, height = Image.open(figure).size
    assert width >= 3 * 256 and height >= 6 * 256  # 3 pairs, both directions, tiles >= 256 px
    assert width >= 3 * 300  # the held-out files at their own resolution, not the 32-px crops
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(figure) in last
