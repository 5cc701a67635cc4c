"""`unpaired export` (ONNX, torch.export) verified round trips, and tiled translation."""
import importlib.util
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from unpaired import UnpairedError, get_registry
from unpaired.inference.export import export_onnx, export_pt2, verify
from unpaired.inference.tiling import translate_tiled
from unpaired.inference.translate import Translator

from helpers import make_image_root, tiny_recipe

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason='the export extra is absent: pip install "unpaired[export]"')


def tiny_resnet(upsample):
    torch.manual_seed(0)
    return get_registry().create("generator", "resnet", in_channels=3, out_channels=3, ngf=4, n_blocks=1,
                                 upsample=upsample).eval()


@pytest.mark.slow
@needs_onnx
@pytest.mark.parametrize("upsample", ["deconv", "resize_conv"])
def test_resnet_onnx_round_trip_at_three_sizes(tmp_path, upsample):
    import onnx

    g = tiny_resnet(upsample)
    path = export_onnx(g, 3, tmp_path / "g.onnx", {"recipe": "{}"}, 4)
    check = verify(g, path, "onnx", 3, 4, crop=32)
    assert len(check.sizes) == 3 and any(h != w for h, w in check.sizes) and (32, 32) not in check.sizes
    assert check.ok and check.max_error < 1e-4
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["opset"] and meta["recipe"] == "{}"


@pytest.mark.slow
def test_resnet_pt2_round_trip_at_three_sizes(tmp_path):
    g = tiny_resnet("resize_conv")
    path = export_pt2(g, 3, tmp_path / "g.pt2", {"recipe": "{}"}, 4)
    check = verify(g, path, "pt2", 3, 4, crop=32)
    assert check.ok and check.max_error < 1e-5


class Unexportable(nn.Module):
    def forward(self, x):
        return torch.tanh(x + float(x.abs().sum().item() > 0))  # data-dependent control flow


def test_a_generator_that_cannot_export_gets_a_message(tmp_path):
    with pytest.raises(UnpairedError, match="cannot be exported to pt2"):
        export_pt2(Unexportable(), 3, tmp_path / "g.pt2", {}, 4, name="odd")


class Airy(nn.Module):
    def forward(self, x):
        return torch.special.airy_ai(x)  # no ONNX translation


@needs_onnx
def test_an_unsupported_operator_is_named(tmp_path):
    with pytest.raises(UnpairedError, match=r"cannot be exported to onnx: operator aten\.special_airy_ai"):
        export_onnx(Airy(), 3, tmp_path / "g.onnx", {}, 4, name="airy")


def test_missing_extra_names_the_install_command(monkeypatch):
    import builtins

    from unpaired.inference.export import require

    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda n, *a, **k: (_ for _ in ()).throw(ImportError(n))
                        if n == "not_a_module_xyz" else real(n, *a, **k))
    with pytest.raises(UnpairedError, match=r'pip install "unpaired\[export\]"'):
        require("not_a_module_xyz")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from unpaired.engine.trainer import train

    tmp = tmp_path_factory.mktemp("export")
    return train(tiny_recipe(make_image_root(tmp / "d"), tmp / "run", "train.max_steps=2")).out_dir


@pytest.mark.slow
@needs_onnx
def test_cli_export_of_a_checkpoint_prints_the_check_and_nothing_else(run, tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "unpaired", "export", str(run), "--format", "onnx", "--out",
                           str(tmp_path / "g.onnx")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "400"})
    assert done.returncode == 0, done.stderr
    assert "max error" in done.stdout and "tolerance" in done.stdout and (tmp_path / "g.onnx").is_file()
    # the exporter's own INFO lines ("Replaced initializer ...", ~53 of them) stay quiet
    assert len(done.stdout.splitlines()) == 1 and done.stderr == "", done.stdout + done.stderr


def smooth_image(w, h, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)


def test_tiled_matches_whole_image_within_threshold():
    t = Translator(tiny_resnet("deconv"), 3, 3, device="cpu", precision="fp32", tile=0)
    img = smooth_image(200, 152)
    whole = np.asarray(t(img)).astype(float)
    tiled = np.asarray(translate_tiled(t, img, 64)).astype(float)
    assert tiled.shape == whole.shape
    diff = np.abs(tiled - whole)
    assert diff.mean() < 2.0 and diff.max() < 32, (diff.mean(), diff.max())
    # without the whole image's normalisation statistics the tiles differ in tone: a worse seam
    from unpaired.inference import tiling
    old = tiling.fixed_stats
    try:
        tiling.fixed_stats = lambda g, s: __import__("contextlib").nullcontext()
        naive = np.abs(np.asarray(translate_tiled(t, img, 64)).astype(float) - whole).mean()
    finally:
        tiling.fixed_stats = old
    assert naive > 2 * diff.mean()


def test_translator_tiles_only_when_asked_or_over_budget(monkeypatch):
    from unpaired.inference import tiling

    t = Translator(tiny_resnet("deconv"), 3, 3, device="cpu", precision="fp32")
    calls = []
    monkeypatch.setattr(tiling, "translate_tiled", lambda tr, img, tile: calls.append(tile) or img)
    t(smooth_image(64, 48))
    assert calls == []
    monkeypatch.setattr(tiling, "WHOLE_MAX_PIXELS", 1000)
    t(smooth_image(64, 48))
    assert calls == [tiling.DEFAULT_TILE]
    t.tile = 32
    t(smooth_image(64, 48))
    assert calls[-1] == 32


def test_cli_translate_with_tiles(run, tmp_path, capsys):
    from unpaired.cli import main

    smooth_image(100, 76).save(tmp_path / "big.png")
    assert main(["translate", str(run), str(tmp_path / "big.png"), "--tile", "32", "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 0
    assert Image.open(tmp_path / "o" / "big.png").size == (100, 76)
    assert main(["translate", str(run), str(tmp_path / "big.png"), "--tile", "30", "--out", str(tmp_path / "p"),
                 "--no-progress"]) == 2
    assert "--tile: 30 must be a multiple of 4" in capsys.readouterr().err


def test_the_default_export_path_of_a_checkpoint_already_loaded_is_the_current_folder():
    from pathlib import Path

    from unpaired.inference.export import default_out

    assert default_out({"nets": {}}, "a2b", "onnx", step=3) == Path("generator_a2b_step3.onnx")
