"""`unpaired data check`: the report and its exit codes."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unpaired.cli.data import add_data_commands
from unpaired.data.check import check_data
from unpaired.errors import UnpairedError


def _image(path: Path, size=(40, 32), mode="RGB", seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path)
    return path


def _cyclegan(root: Path, n_a=3, n_b=2, tests=True) -> Path:
    for i in range(n_a):
        _image(root / "trainA" / f"a{i}.png", size=(40 + 8 * i, 32), seed=i)
    for i in range(n_b):
        _image(root / "trainB" / f"b{i}.jpg", size=(48, 36 + 4 * i), mode="L", seed=100 + i)
    if tests:
        _image(root / "testA" / "ta.png", seed=200)
        _image(root / "testB" / "tb.png", seed=201)
    return root


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="unpaired")
    add_data_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "check", *argv])
    return args.func(args)


def test_clean_folder_reports_counts_sizes_modes_and_exit_0(tmp_path):
    root = _cyclegan(tmp_path / "set")
    report = check_data(root)
    assert report.exit_code == 0 and report.problems == []
    rows = {f.label: f for f in report.folders}
    assert [f.label for f in report.folders] == ["trainA", "trainB", "testA", "testB"]
    assert len(rows["trainA"].scan.good) == 3 and len(rows["trainB"].scan.good) == 2
    text = report.text()
    lines = {cells[0]: cells for cells in (line.replace("│", " ").split() for line in text.splitlines()) if cells}
    assert lines["trainA"][1:] == ["3", "0", "40-56", "32", "RGB", "3"]
    assert lines["trainB"][1:] == ["2", "0", "48", "36-40", "L", "2"]
    assert "OK: ready for training (trainA 3, trainB 2 usable images)" in text


def test_missing_train_b_exits_1_and_names_the_path(tmp_path):
    root = _cyclegan(tmp_path / "set")
    shutil.rmtree(root / "trainB")
    report = check_data(root)
    assert report.exit_code == 1
    assert any(str(root / "trainB") in problem and "missing" in problem for problem in report.problems)
    assert "NOT READY" in report.text()


def test_empty_domain_exits_1(tmp_path):
    root = _cyclegan(tmp_path / "set")
    for path in (root / "trainA").iterdir():
        path.unlink()
    (root / "trainA" / "readme.txt").write_text("images go here")
    report = check_data(root)
    assert report.exit_code == 1
    assert any("domain trainA has no image files" in problem for problem in report.problems)


def test_bad_files_are_listed_and_fail_under_the_error_policy(tmp_path):
    root = _cyclegan(tmp_path / "set", n_a=2)
    (root / "trainA" / "empty.jpg").write_bytes(b"")
    (root / "trainB" / "notes.png").write_text("not an image")
    (root / "testA" / "cut.png").write_bytes((root / "trainA" / "a0.png").read_bytes()[:200])
    report = check_data(root)
    text = report.text()
    assert "trainA/empty.jpg: empty file (0 bytes)" in text
    assert "trainB/notes.png: not an image" in text
    assert "testA/cut.png: truncated" in text
    assert report.exit_code == 0  # the default run skips them (and names them)
    strict = check_data(root, on_bad_file="error")
    assert strict.exit_code == 1
    assert len(strict.problems) == 2  # trainA and trainB; a bad test file does not stop training
    assert all("1 of 3 image files" in problem and "on_bad_file" in problem for problem in strict.problems)


def test_domain_with_only_bad_files_exits_1(tmp_path):
    root = _cyclegan(tmp_path / "set", n_b=0)
    (root / "trainB").mkdir()
    (root / "trainB" / "b.jpg").write_text("<html>404</html>")
    report = check_data(root)
    assert report.exit_code == 1
    assert report.problems == [f"domain trainB: none of the 1 image files in {root / 'trainB'} can be loaded; "
                               "fix or replace them (the reasons are listed above)"]


def test_duplicates_and_train_test_leak(tmp_path):
    root = _cyclegan(tmp_path / "set")
    shutil.copy(root / "trainA" / "a0.png", root / "trainA" / "a0_copy.png")
    shutil.copy(root / "trainB" / "b1.jpg", root / "testB" / "b1.jpg")
    report = check_data(root)
    assert report.exit_code == 0
    groups = sorted(sorted(p.relative_to(root).as_posix() for p in g) for g in report.duplicates)
    assert groups == [["testB/b1.jpg", "trainB/b1.jpg"], ["trainA/a0.png", "trainA/a0_copy.png"]]
    text = report.text()
    assert "trainA/a0.png = trainA/a0_copy.png\n" in text
    assert "trainB/b1.jpg = testB/b1.jpg  <- in both a train and a test folder" in text


def test_explicit_domain_folders(tmp_path):
    root = tmp_path / "scraped"
    for i in range(2):
        _image(root / "forest" / f"f{i}.jpg", seed=i)
        _image(root / "abstract" / "nested" / f"x{i}.webp", seed=10 + i)
    guess = check_data(root)
    assert guess.exit_code == 1
    assert any("pass --a abstract --b forest" in problem for problem in guess.problems)
    report = check_data(root, a="forest", b="abstract")
    assert report.exit_code == 0
    assert [(f.label, len(f.scan.good)) for f in report.folders] == [("forest", 2), ("abstract", 2)]
    missing = check_data(root, a="forest", b="paintings")
    assert missing.exit_code == 1 and str(root / "paintings") in missing.problems[0]
    outside = tmp_path / "elsewhere"
    _image(outside / "p.png")
    assert check_data(root, a="forest", b=str(outside)).exit_code == 0
    with pytest.raises(UnpairedError, match="both domain folders"):
        check_data(root, a="forest")


def test_folder_holding_a_dataset_points_to_it(tmp_path):
    _cyclegan(tmp_path / "data" / "horse2zebra")
    report = check_data(tmp_path / "data")
    assert report.exit_code == 1
    assert str(tmp_path / "data" / "horse2zebra") + " looks like a data set" in report.problems[0]


def test_missing_root_names_the_path(tmp_path):
    with pytest.raises(UnpairedError, match=str(tmp_path / "nowhere")):
        check_data(tmp_path / "nowhere")


def test_cli_exit_codes_and_output(tmp_path, capsys):
    root = _cyclegan(tmp_path / "set")
    assert _run_cli(str(root)) == 0
    assert "OK: ready for training" in capsys.readouterr().out
    (root / "trainB" / "b0.jpg").unlink()
    (root / "trainB" / "b1.jpg").unlink()
    assert _run_cli(str(root)) == 1
    assert "domain trainB has no image files" in capsys.readouterr().out
    _image(root / "trainB" / "b0.jpg")
    (root / "trainB" / "bad.jpg").write_bytes(b"")
    assert _run_cli(str(root)) == 0
    assert _run_cli(str(root), "--on-bad-file", "error") == 1
    assert "trainB/bad.jpg: empty file" in capsys.readouterr().out
    scraped = tmp_path / "two"
    _image(scraped / "x" / "1.png")
    _image(scraped / "y" / "1.png", seed=5)
    assert _run_cli(str(scraped), "--a", "x", "--b", "y") == 0


def test_few_training_images_are_noted_with_the_augmentation_to_use(tmp_path, monkeypatch):
    from unpaired.data import check

    root = _cyclegan(tmp_path / "set")  # trainA 3 images, trainB 2
    report = check_data(root)
    notes = [n for n in report.notes if "few training images" in n]
    assert len(notes) == 1 and "trainA has 3, trainB has 2" in notes[0]
    assert "augment.name=ada" in notes[0] and "augment.name=diffaugment" in notes[0]
    assert report.exit_code == 0 and "few training images" in " ".join(report.text().split())
    monkeypatch.setattr(check, "FEW_IMAGES", 3)  # trainA has enough now
    notes = [n for n in check_data(root).notes if "few training images" in n]
    assert len(notes) == 1 and "trainB has 2" in notes[0] and "trainA" not in notes[0]
