"""The shipped preview model (models/forest_abstract_preview.pt, scripts/make_preview.py): small,
its making recorded, and it translates on a fresh clone with the commands the docs give."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unpaired import Translator
from unpaired.store import checkpoint
from unpaired.cli import main

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "forest_abstract_preview.pt"
PHOTO = REPO / "data" / "forest_abstract" / "testA" / "forest_path_001.jpg"


def test_the_preview_model_is_small_and_says_how_it_was_made():
    assert MODEL.stat().st_size < 10 * 2**20
    state = checkpoint.load(MODEL)
    made = state["made_by"]
    assert made["script"] == "scripts/make_preview.py" and (REPO / made["script"]).is_file()
    assert made["recipe"] == "recipes/forest_abstract.yaml --quick" and made["steps"] == state["step"] == 1000
    assert "forest_abstract.yaml" in made["command"] and made["date"]
    # the generators only, in float16; no discriminator, optimizer or random state
    assert set(state["nets"]) == {t["net"] for t in state["translators"].values()} and "optimizers" not in state
    assert all(v.dtype == torch.float16 for w in state["nets"].values() for v in w.values() if v.is_floating_point())


@pytest.mark.parametrize("direction", ["a2b", "b2a"])
def test_the_preview_model_translates(direction):
    t = Translator.from_checkpoint(MODEL, direction=direction, device="cpu", precision="fp32")
    with Image.open(PHOTO) as img:
        x = img.convert("RGB")
    y = np.asarray(t(x), dtype=np.float32)
    assert y.shape == (x.height, x.width, 3)
    assert y.std() > 10 and np.abs(y - np.asarray(x, dtype=np.float32)).mean() > 5  # a picture, and a change


def test_translate_takes_the_model_file(tmp_path, capsys):
    code = main(["translate", str(MODEL), str(PHOTO), "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "forest_path_001.png").is_file()
