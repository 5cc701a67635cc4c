"""The data layer as a new user meets it: download a public set from a mirror and train on
it; train on a folder of messy real-world files."""
import functools
import io
import logging
import os
import subprocess
import sys
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import REPO, TINY, tiny_recipe


def png_bytes(seed, size=(40, 40), mode="RGB"):
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize(size).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP server whose root holds horse2zebra.zip (the published layout)."""
    root = tmp_path / "mirror"
    root.mkdir()
    with zipfile.ZipFile(root / "horse2zebra.zip", "w") as z:
        for folder in ("trainA", "trainB", "testA", "testB"):
            for i in range(4):
                z.writestr(f"horse2zebra/{folder}/{i}.png", png_bytes(len(folder) * 10 + i))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
def test_download_then_the_horse2zebra_recipe_runs_as_is(mirror, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, UNPAIRED_DATA_MIRROR=mirror)
    run = functools.partial(subprocess.run, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    missing = run([sys.executable, "-m", "unpaired", "run", str(REPO / "recipes" / "horse2zebra.yaml"), "--quick"])
    assert missing.returncode == 2 and "unpaired data download horse2zebra" in " ".join(missing.stderr.split())
    got = run([sys.executable, "-m", "unpaired", "data", "download", "horse2zebra", "--no-progress"])
    assert got.returncode == 0, got.stderr
    assert sorted(p.name for p in (work / "data" / "horse2zebra").iterdir()) == ["testA", "testB", "trainA", "trainB"]
    trained = run([sys.executable, "-m", "unpaired", "run", str(REPO / "recipes" / "horse2zebra.yaml"), "--quick",
                   *TINY, "train.max_steps=2"])
    assert trained.returncode == 0, trained.stderr
    assert (work / "runs" / "horse2zebra_quick" / "checkpoints" / "latest.pt").is_file()


def make_messy_folder(root):
    """Every odd and bad file kind a person drops into a folder."""
    a, b = root / "trainA", root / "trainB" / "nested" / "deeper"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8))
    base.convert("L").save(a / "gray.png")
    base.convert("P").save(a / "palette.GIF.png")
    base.convert("RGBA").save(a / "alpha.png")
    base.convert("CMYK").save(a / "cmyk.JPG")
    Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 257)).save(a / "sixteen.png")
    base.save(a / "small.webp")
    base.save(b / "photo.JPEG")
    base.resize((20, 12)).save(b / "tiny.bmp")
    base.save(b / "scan.tif")
    (a / "empty.jpg").write_bytes(b"")
    (a / "notes.jpg").write_text("this is text, not a picture")
    good = io.BytesIO()
    base.save(good, format="JPEG")
    (b / "truncated.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    return ["empty.jpg", "notes.jpg", "truncated.jpg"]


@pytest.mark.slow
def test_a_messy_folder_trains_and_names_what_it_skipped(tmp_path, caplog):
    bad = make_messy_folder(tmp_path / "messy")
    from unpaired.engine.trainer import train

    with caplog.at_level(logging.WARNING, logger="unpaired"):
        cfg = tiny_recipe(tmp_path / "messy", tmp_path / "run", "data.test_params=null", "train.max_steps=3",
                          "data.batch_size=2")
        result = train(cfg)
    assert result.step == 3
    skipped = " ".join(r.getMessage() for r in caplog.records)
    assert all(name in skipped for name in bad), skipped
    # every messy image (50x30 or 20x12) is smaller than the 32-px crop on one side: counted
    assert "6 of 6 images in" in skipped and "3 of 3 images in" in skipped and "upscaled" in skipped
    state = torch.load(result.checkpoint, weights_only=True)
    assert state["channels"] == [3, 3]


def test_a_messy_folder_is_refused_up_front_when_asked(tmp_path):
    make_messy_folder(tmp_path / "messy")
    from unpaired import UnpairedError
    from unpaired.engine.trainer import Trainer

    with pytest.raises(UnpairedError, match="on_bad_file"):
        Trainer(tiny_recipe(tmp_path / "messy", tmp_path / "run", "data.test_params=null",
                            "data.params.on_bad_file=error"))


def test_grayscale_training_when_the_recipe_asks_for_it(image_root, tmp_path):
    from unpaired.engine.trainer import train

    result = train(tiny_recipe(image_root, tmp_path / "run", "data.params.channels=1", "train.max_steps=1"))
    state = torch.load(result.checkpoint, weights_only=True)
    assert state["channels"] == [1, 1]
    assert state["nets"]["g_ab"]["model.1.weight"].shape[1] == 1


def test_two_explicit_folders(image_root, tmp_path):
    from unpaired.engine.trainer import train

    cfg = tiny_recipe(image_root, tmp_path / "run", f"data.params={{a: {image_root / 'trainA'}, b: {image_root / 'trainB'}, "
                      "load_size: 36, crop_size: 32}", "data.test_params=null", "train.max_steps=1")
    assert train(cfg).step == 1
