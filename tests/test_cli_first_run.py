"""What a newcomer meets on a first run from the command line: data found from anywhere, installs, plugin swaps, the figure, README's set-up, piped output; each test fails without its fix."""
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
@pytest.mark.slow
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
    code = ("import os, unpaired; from unpaired import Translator; "
            "print(os.path.realpath(unpaired.__file__)); print(os.path.abspath(unpaired.__file__))")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_installed_package_wins_over_a_folder_named_unpaired(tmp_path):
    import tomllib

    neutral = _import_from(tmp_path)
    if neutral.returncode != 0 or Path(neutral.stdout.split()[0]) != REPO / "unpaired" / "__init__.py":
        pytest.skip("unpaired is not installed from this checkout (pip install -e .)")
    strict = tomllib.loads((REPO / "pyproject.toml").read_text()).get("tool", {}).get("distutils")
    if strict and neutral.stdout.split()[1] == str(REPO / "unpaired" / "__init__.py"):
        pytest.skip("this checkout was installed before strict editable installs: pip install -e . again")
    (tmp_path / "unpaired" / "plugins").mkdir(parents=True)  # e.g. the clone itself, ~/unpaired
    beside = _import_from(tmp_path)
    assert beside.returncode == 0, beside.stderr
    assert Path(beside.stdout.split()[0]) == REPO / "unpaired" / "__init__.py"


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
    from unpaired.recipe.config import load_recipe

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
    from unpaired.recipe.config import load_recipe

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
    assert cfg.generator.params == {"ngf": 8, "n_blocks": 6, "upsample": "resize_conv"}


# --------------------------------------------------------------------------- 5. the first picture
@pytest.mark.slow
def test_the_end_of_run_figure_is_readable_and_named_last(tmp_path, capsys):
    from PIL import Image

    root = make_image_root(tmp_path / "data", n=3, size=(300, 260))
    out = tmp_path / "run"
    assert main(["run", str(RECIPE), f"data.params.root={root}", f"out_dir={out}", *TINY, "train.max_steps=2"]) == 0
    figure = out / "figure.png"
    width, height = Image.open(figure).size
    assert width >= 3 * 256 and height >= 6 * 256  # 3 pairs, both directions, tiles >= 256 px
    assert width >= 3 * 300  # the held-out files at their own resolution, not the 32-px crops
    lines = capsys.readouterr().err.strip().splitlines()
    last = lines[lines.index("next:") - 1]  # the last line before the next steps (tests/test_run_output.py)
    assert last.startswith("done: ") and str(figure) in last
    assert str(out / "report.html") in last and (out / "report.html").is_file()  # the report, named last too


# --------------------------------------------------------------------------- 6, 7. README commands
README = (REPO / "README.md").read_text()


def test_readme_gives_the_cpu_only_torch_install_first_as_a_matching_pair():
    from unpaired.evaluation.vision import matching_torchvision

    setup = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"pip install torch==(\S+) torchvision==(\S+) --index-url https://download.pytorch.org/whl/cpu",
                      setup)
    assert found, "no CPU-only torch line in Set-up"
    assert matching_torchvision(found.group(1)) == found.group(2)  # a pair, or pip mixes builds
    assert setup.index(found.group(0)) < setup.index("unpaired run recipes/forest_abstract.yaml --quick")


def test_readme_quotes_every_mapping_override_and_the_cli_says_quote_it(capsys):
    code = " ".join(re.findall(r"`([^`]+)`", README)) + " ".join(re.findall(r"```bash\n(.*?)```", README, re.S))
    unquoted = re.findall(r"""(?<!["'\w.])[\w.]+=[{\[]""", code)
    assert not unquoted, unquoted
    assert main(["run", str(RECIPE), "generator.params={ngf:", "32}", "--quick"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "quote it" in err and "'generator.params={ngf: 32}'" in err


# --------------------------------------------------------------------------- 8, 9. a finished run
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finished")
    root = make_image_root(tmp / "data", n=3)
    args = [str(RECIPE), f"data.params.root={root}", f"out_dir={tmp / 'run'}", *quiet()]
    assert main(["run", *args]) == 0
    return tmp / "run", root, args


def test_eval_says_why_kid_has_no_spread_and_readme_tells_the_csv_truth(finished, tmp_path, capsys):
    run, _, _ = finished
    assert main(["eval", str(run), "--extractor", "tiny", "--device", "cpu", "--out", str(tmp_path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "no spread" in out and "every subset is the whole set" in out
    assert not (tmp_path / "per_image.csv").exists()  # written only with ground truth, as README says
    assert "and with ground truth `per_image.csv`" in " ".join(README.split())


def test_an_offline_download_says_so_once(monkeypatch, tmp_path):
    import urllib.error

    from unpaired import UnpairedError
    from unpaired.evaluation.features import download_weights

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(UnpairedError) as info:
        download_weights(["https://a.example/w.pth", "https://b.example/w.pth"], "ab" * 32, "w.pth", tmp_path)
    message = str(info.value)
    assert message.count("Check the network") == 1 and "\n" not in message
    assert "a.example" in message and "b.example" in message


def test_resume_of_a_finished_run_says_which_key_to_raise(finished, capsys):
    _, _, args = finished
    assert main(["run", *args, "--resume"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "finished" in err and "train.max_steps=4" in err


def test_key_typos_suggest_settable_keys_only():
    from unpaired import UnpairedError
    from unpaired.recipe.config import load_recipe

    with pytest.raises(UnpairedError) as info:
        load_recipe(RECIPE, ["train.max_step=3"], quick=True)
    assert "train.max_steps" in str(info.value) and "quick." not in str(info.value)


def test_piped_output_has_no_blank_lines_no_wrapping_and_whole_plugin_names(finished, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("COLUMNS", raising=False)
    _, root, _ = finished
    deep = root.parent / ("a_rather_long_folder_name_" * 3) / "my_data"
    deep.parent.mkdir()
    os.symlink(root, deep)
    assert main(["data", "check", str(deep)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"Data check of {deep}"  # no blank line first, path not wrapped
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for name in ("unpaired.plugins.metrics_csv", "unpaired.plugins.tensorboard", "unpaired.plugins.synthetic"):
        assert name in out
    run, _, _ = finished
    image = next((root / "testA").iterdir())
    assert main(["translate", str(run), str(image), "--out", str(tmp_path / "t")]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("translated 1 image") and not captured.err.strip()
    assert len(captured.out.splitlines()) == 1  # one line however long the paths


@pytest.mark.slow
def test_modules_added_after_an_editable_install_are_found(tmp_path):
    tree = tmp_path / "tree"  # what a strict editable install links: only the files of that day
    for package, source in (("unpaired", REPO / "unpaired"), ("unpaired/plugins", REPO / "plugins")):
        (tree / package).mkdir(parents=True)
        for name in ("__init__.py", "version.py", "errors.py", "hookspecs.py", "loading.py", "registry.py"):
            if (source / name).is_file():
                (tree / package / name).symlink_to(source / name)
    env = dict(os.environ, PYTHONPATH=str(tree))
    code = "import unpaired.console, unpaired.plugins.figure as f; print(f.__file__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == REPO / "plugins" / "figure.py"
