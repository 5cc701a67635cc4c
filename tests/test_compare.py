"""unpaired compare RUN[@STEP] ... IMAGES --out grid.png: one column per model, the right models."""
import pytest
import os

from PIL import Image

from helpers import mean_level_difference
from unpaired import Translator
from unpaired.cli import main
from unpaired.inference.compare import CAPTION, HEADER, PAD, font


@pytest.mark.slow
def test_compare_puts_each_model_in_its_own_labelled_column(kept_run, tmp_path, capsys):
    images = kept_run.parent / "data" / "testB"
    out = tmp_path / "grids" / "grid.png"
    code = main(["compare", f"{kept_run}@2", str(kept_run), str(images), "--out", str(out), "--direction", "b2a",
                 "--size", "64", "--max-images", "2", "--precision", "fp32", "--device", "cpu"])
    assert code == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "first 2 of 6 images" in said and "compared 2 model(s) on 2 image(s) (b2a)" in said
    grid = Image.open(out)
    first = sorted(images.iterdir())[0]
    source = Image.open(first)
    expected = [Translator.from_checkpoint(kept_run, direction="b2a", step=step, size=64, precision="fp32")(source)
                for step in (2, 4)]
    w, h = expected[0].size  # 64 px on the shorter side: 77 x 64
    assert h == 64
    # columns in the order given: input, run@2, run (latest: step 4), each tile at its column's left edge
    lefts, x = [], PAD
    for width in _column_widths(w):
        lefts.append(x)
        x += width + PAD
    top = HEADER + PAD
    tiles = [grid.crop((left, top, left + w, top + h)) for left in lefts]
    assert mean_level_difference(tiles[0], source.resize((w, h), Image.BICUBIC)) < 3
    assert mean_level_difference(tiles[1], expected[0]) == 0
    assert mean_level_difference(tiles[2], expected[1]) == 0
    assert grid.height == HEADER + 2 * (h + CAPTION) + 3 * PAD  # two rows


def _column_widths(tile_width):
    """The grid's column widths: each is as wide as its image or its label, whichever is wider."""
    labels = [("input", ""), ("run", "cyclegan, step 2"), ("run", "cyclegan, step 4")]
    return [max(tile_width, int(font(15).getlength(a)), int(font(12).getlength(b))) for a, b in labels]


def test_compare_never_writes_over_an_input(kept_run, tmp_path, capsys):
    src = tmp_path / "photo.png"
    Image.new("RGB", (40, 40), (200, 10, 10)).save(src)
    alias = tmp_path / "grid.png"
    os.link(src, alias)  # another name for the same file: caught by inode, not by path
    before = src.read_bytes()
    assert main(["compare", str(kept_run), str(src), "--out", str(alias)]) == 2
    assert "would be overwritten" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_compare_names_what_is_wrong(kept_run, tmp_path, capsys):
    src = tmp_path / "photo.png"
    Image.new("RGB", (40, 40)).save(src)
    out = str(tmp_path / "grid.png")
    cases = [
        ([f"{kept_run}@3", str(src)], "keeps steps 2, 4"),
        ([f"{tmp_path / 'gone'}@3", str(src)], "gone does not exist"),
        ([str(kept_run)], "no images after the runs"),
        ([str(src), str(kept_run)], "is not a run directory"),
        ([str(kept_run), str(tmp_path / "missing.png")], "missing.png does not exist"),
    ]
    for args, message in cases:
        assert main(["compare", *args, "--out", out]) == 2, args
        assert message in " ".join(capsys.readouterr().err.split()), (args, message)
    assert main(["compare", str(kept_run), str(src), "--out", str(tmp_path / "grid.gif")]) == 2
    assert ".png or .jpg" in capsys.readouterr().err
    assert not (tmp_path / "grid.png").exists()
