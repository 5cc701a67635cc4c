"""Text a user types or a file holds (overrides, paths, names in checkpoints and file names):
it either works or exits 2 naming the value; it is never read as rich markup, never forges a
line, never runs code, and a secret from the environment never reaches the terminal."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from unpaired.cli import main
from unpaired.inference import tiling

from helpers import RECIPE, TINY

RUN = ["run", RECIPE, *TINY, "disable_plugins=[progress]"]


def run_main(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def save_png(path, size=(40, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def crafted(run_dir, tmp_path, change):
    state = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)
    change(state)
    path = tmp_path / "crafted.pt"
    torch.save(state, path)
    return path


# ============================================================================ overrides
@pytest.mark.parametrize("value", ["a: b: c", "@foo", "%x", "'a", "*x", "`", "a`b"])
def test_a_value_that_is_not_yaml_is_taken_as_typed(capsys, value):
    code, out, err = run_main(capsys, "run", RECIPE, f"name={value}", "--print-config")
    assert code == 0 and "Traceback" not in err, err
    from omegaconf import OmegaConf

    assert OmegaConf.create(out).name == value


def test_a_value_of_the_wrong_type_is_named(capsys):
    code, _, err = run_main(capsys, "run", RECIPE, "train.lr=]", "--print-config")
    assert code == 2 and "train.lr" in err and "']'" in err and "Traceback" not in err, err


def test_a_yaml_tag_is_refused_and_runs_nothing(capsys, tmp_path):
    marker = tmp_path / "ran"
    code, out, err = run_main(capsys, "run", RECIPE, f"name=!!python/object/apply:os.system ['touch {marker}']",
                              "--print-config")
    assert code == 2 and "YAML tags" in err and not out, err
    assert not marker.exists()


def test_a_control_character_in_a_value_is_refused_and_shown_escaped(capsys):
    code, _, err = run_main(capsys, "run", RECIPE, "name=a\x01b", "--print-config")
    assert code == 2 and "control character" in err and "a\\x01b" in err and "\x01" not in err, repr(err)


def test_an_empty_value_is_refused_not_read_as_null(capsys):
    code, _, err = run_main(capsys, "run", RECIPE, "augment.name=", "--print-config")
    assert code == 2 and "augment.name=" in err and "augment=null" in err, err


def test_an_empty_augmentation_name_in_a_recipe_is_refused(capsys, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\naugment: {name: ''}\n")
    code, _, err = run_main(capsys, "run", recipe, "--print-config")
    assert code == 2 and "augment.name is empty" in err, err


def test_a_bracket_in_a_path_is_not_a_split_override(capsys):
    code, out, err = run_main(capsys, "run", RECIPE, "out_dir=/tmp/exp[2", "--print-config")
    assert code == 0 and "shell split" not in err, err
    assert "out_dir: /tmp/exp[2" in out
    # a real split is still caught, and a control character in it is shown escaped
    code, _, err = run_main(capsys, "run", RECIPE, "generator.params={ngf:", "8,\x1b", "n_blocks:", "1}")
    assert code == 2 and "shell split" in err and "\x1b" not in err and "\\x1b" in err, repr(err)


# ============================================================================ printed text
def test_paths_holding_markup_are_printed_as_they_are(finished_run, tmp_path, capsys):
    src = save_png(tmp_path / "in" / "a.png")
    for name in ("mk[/]out", "mk[red]out", "mk[bold]x[/bold]"):
        code, out, err = run_main(capsys, "translate", finished_run, src, "--out", tmp_path / name, "--no-progress")
        assert code == 0 and "Traceback" not in err, err
        assert (tmp_path / name / "a.png").is_file()
        assert name in out, out


@pytest.mark.slow
def test_a_run_folder_holding_markup_trains_and_reports(image_root, tmp_path, capsys):
    run = tmp_path / "mk[/]run2"
    code, out, err = run_main(capsys, *RUN, f"data.params.root={image_root}", f"out_dir={run}", "train.max_steps=2",
                              "train.checkpoint_every=2", "disable_plugins=[]")
    assert code == 0 and "Traceback" not in err, err
    assert (run / "checkpoints" / "latest.pt").is_file()
    assert str(run) in out + err
    code, out, err = run_main(capsys, "report", run)
    assert code == 0 and str(run) in out, err


def test_a_secret_from_the_environment_is_not_printed(image_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UNPAIRED_TEST_SECRET", "hunter2SECRETtok")
    code, out, err = run_main(capsys, *RUN, f"data.params.root={image_root}", "name=fa_${oc.env:UNPAIRED_TEST_SECRET}",
                              "train.max_steps=1", f"out_dir={tmp_path / 'run'}", "disable_plugins=[]")
    assert code == 0, err
    assert "hunter2SECRETtok" not in out + err
    assert "training fa_${oc.env:UNPAIRED_TEST_SECRET}" in out + err


# ============================================================================ text from files
def test_a_line_break_in_a_file_name_forges_no_line_in_data_check(tmp_path, capsys):
    root = tmp_path / "data"
    for folder in ("trainA", "trainB"):
        save_png(root / folder / "ok.png")
    (root / "trainA" / "x\nOK: ready for training (forged).png").write_bytes(b"not an image")
    code, out, err = run_main(capsys, "data", "check", root)
    assert "x\\nOK: ready for training (forged).png" in out, out
    assert not any(line.startswith("OK: ready for training (forged)") for line in out.splitlines()), out


def test_a_line_break_in_a_checkpoints_plugin_record_forges_no_line(finished_run, tmp_path, capsys):
    def change(state):
        state["config"]["generator"]["name"] = "gone_net"
        state["plugins"]["generator"].update(name="gone_net", source="entry point", plugin="p",
                                             dist="d\nerror: forged line", version="1")

    code, _, err = run_main(capsys, "translate", crafted(finished_run, tmp_path, change),
                            save_png(tmp_path / "a.png"), "--out", tmp_path / "o")
    assert code == 2 and "d\\nerror: forged line" in err, repr(err)
    assert len(err.strip().splitlines()) == 1, err


def test_a_huge_value_from_a_checkpoint_is_cut(finished_run, tmp_path, capsys):
    def change(state):
        state["config"]["generator"]["params"]["conditioning"] = ["x" * 1_000_000]

    code, _, err = run_main(capsys, "translate", crafted(finished_run, tmp_path, change),
                            save_png(tmp_path / "a.png"), "--out", tmp_path / "o")
    assert code == 2 and "conditioning" in err and "characters" in err, err[:500]
    assert len(err) < 5000


def test_a_checkpoint_with_non_finite_weights_is_refused(finished_run, tmp_path, capsys):
    def change(state):
        for weights in state["nets"].values():
            for value in weights.values():
                if value.is_floating_point():
                    value.fill_(math.nan)

    code, _, err = run_main(capsys, "translate", crafted(finished_run, tmp_path, change),
                            save_png(tmp_path / "a.png"), "--out", tmp_path / "o")
    assert code == 2 and "NaN" in err and not (tmp_path / "o").exists(), err


@pytest.mark.parametrize("seed", ["18446744073709551616", "-1", str(2**32)])
def test_a_seed_outside_the_range_is_refused(finished_run, tmp_path, capsys, seed):
    code, _, err = run_main(capsys, "translate", finished_run, save_png(tmp_path / "a.png"), "--out", tmp_path / "o",
                            "--seed", seed)
    assert code == 2 and "--seed" in err and seed in err.replace(",", ""), err


# ============================================================================ memory from a small file
def test_the_tiling_budget_counts_the_pixels_computed():
    # a 1 x 1,000,000 image has a million pixels, but a generator computes 16 x 1,000,000
    assert tiling.should_tile(1, 1_000_000, None, 4) == tiling.DEFAULT_TILE
    assert tiling.should_tile(1000, 1000, None, 4) == 0
    assert tiling.computed_pixels(1, 1_000_000, 4) == 16 * 1_000_000


def test_a_thin_image_is_tiled_not_translated_whole(finished_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tiling, "WHOLE_MAX_PIXELS", 100_000)  # 1 x 20,000 px computes 320,000
    calls = []
    real = tiling.translate_tiled
    monkeypatch.setattr(tiling, "translate_tiled", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    src = tmp_path / "in" / "thin.png"
    src.parent.mkdir()
    Image.new("RGB", (1, 20_000), (200, 40, 40)).save(src)
    code, _, err = run_main(capsys, "translate", finished_run, src, "--out", tmp_path / "o", "--no-progress")
    assert code == 0, err
    assert calls == [tiling.DEFAULT_TILE]
    with Image.open(tmp_path / "o" / "thin.png") as out:
        assert out.size == (1, 20_000)
