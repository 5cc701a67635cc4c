"""`unpaired translate` and the Translator API: inputs, names, sizes, modes, errors."""
import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from unpaired import UnpairedError
from unpaired.store import checkpoint
from unpaired.data.tensors import pad_to_multiple
from unpaired.inference.translate import Translator

from helpers import make_image_root, tiny_recipe

QUIET = ["disable_plugins=[progress]", "train.max_steps=2"]


def cli(capsys, *argv):
    """Run a CLI command as `unpaired` does: exit code, stdout, stderr. Uses the real entry
    point once it knows the command, else the handlers through a throwaway parser."""
    from unpaired import cli as main_cli
    from unpaired.cli.model import add_model_commands

    argv = [str(a) for a in argv]
    commands = next(a.choices for a in main_cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if argv[0] in commands:
        code = main_cli.main(argv)
    else:
        parser = argparse.ArgumentParser(prog="unpaired")
        add_model_commands(parser.add_subparsers())
        args = parser.parse_args(argv)
        try:
            code = args.func(args)
        except UnpairedError as exc:
            import sys

            print(f"error: {exc}", file=sys.stderr)
            code = 2
    out, err = capsys.readouterr()
    return code, out, err


def train_tiny(tmp, *overrides, channels=None):
    from unpaired.engine.trainer import train

    root = make_image_root(tmp / "data")
    extra = [f"data.params.channels={channels}"] if channels else []
    cfg = tiny_recipe(root, tmp / "run", *QUIET, *extra, *overrides)
    return train(cfg).out_dir


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(2)
    return train_tiny(tmp_path_factory.mktemp("translate"))


def save(path, size=(40, 32), mode="RGB", seed=0):
    g = torch.Generator().manual_seed(seed)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    pixels = torch.randint(0, 256, (size[1], size[0], channels), generator=g, dtype=torch.uint8)
    img = Image.fromarray(pixels.numpy().squeeze(-1) if channels == 1 else pixels.numpy(), mode=mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def pixels(img):
    """An image (or its file) as a float tensor (H, W, C)."""
    img = img if isinstance(img, Image.Image) else Image.open(img)
    return torch.from_numpy(np.array(img)).float()


@pytest.mark.slow
def test_files_folder_and_glob_keep_names_and_structure(run, tmp_path, capsys):
    a = save(tmp_path / "in" / "photo.jpg")
    b = save(tmp_path / "in" / "other.png", seed=1)
    save(tmp_path / "tree" / "x" / "deep.png", seed=2)
    save(tmp_path / "tree" / "top.bmp", seed=3)
    save(tmp_path / "globbed" / "g1.png", seed=4)
    save(tmp_path / "globbed" / "g2.png", seed=5)
    (tmp_path / "globbed" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    code, stdout, _ = cli(capsys, "translate", run, a, b, tmp_path / "tree", f"{tmp_path}/globbed/*", "--out", out,
                          "--no-progress")
    assert code == 0, stdout
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["g1.png", "g2.png", "other.png", "photo.png", "top.png", "x/deep.png"]
    assert "translated 6 image(s) a2b" in stdout
    assert Image.open(out / "x" / "deep.png").size == (40, 32)


def test_both_directions_use_their_own_generator(run, tmp_path, capsys):
    src = save(tmp_path / "in" / "p.png", size=(36, 28))
    for direction in ("a2b", "b2a"):
        code, _, err = cli(capsys, "translate", run, src, "--direction", direction, "--out", tmp_path / direction,
                           "--no-progress", "--precision", "fp32")  # fp32: compared with fp32 by hand below
        assert code == 0, err
    ab, ba = pixels(tmp_path / "a2b" / "p.png"), pixels(tmp_path / "b2a" / "p.png")
    assert (ab - ba).abs().mean() > 0.5  # two different networks

    # and they are the checkpoint's networks: the file matches G(x) computed by hand
    state = checkpoint.load(run)
    t = Translator.from_checkpoint(run, direction="b2a", device="cpu")
    x = pixels(src).permute(2, 0, 1) / 127.5 - 1
    from unpaired.engine.restore import load_generators

    nets, _ = load_generators(state)
    with torch.no_grad():
        expected = ((nets.g_ba(x[None])[0].clamp(-1, 1) + 1) * 127.5).round()
    got = ba.permute(2, 0, 1)
    assert (got - expected).abs().max() <= 1
    assert t.step == state["step"] == 2


def test_odd_sizes_come_back_at_their_size(run, tmp_path, capsys):
    src = save(tmp_path / "odd.png", size=(97, 203))
    code, _, err = cli(capsys, "translate", run, src, "--out", tmp_path / "o", "--no-progress")
    assert code == 0, err
    assert Image.open(tmp_path / "o" / "odd.png").size == (97, 203)
    t = Translator.from_checkpoint(run, device="cpu")
    assert t(Image.open(src)).size == (97, 203)
    # --size: the shorter side becomes N, the aspect is kept
    assert Translator.from_checkpoint(run, device="cpu", size=48)(Image.open(src)).size == (48, 100)


def test_padding_is_reflect_and_cropped_back():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float).view(2, 3, 5, 7)
    padded, (h, w) = pad_to_multiple(x, 4)
    assert padded.shape == (2, 3, 8, 8) and (h, w) == (5, 7)
    assert torch.equal(padded[..., :5, :7], x)
    assert torch.equal(padded[..., 5, :7], x[..., 3, :])  # reflected, not zeros
    tiny, _ = pad_to_multiple(torch.ones(1, 1, 1, 2), 4)  # too small to reflect: replicate
    assert tiny.shape == (1, 1, 4, 4) and torch.equal(tiny, torch.ones(1, 1, 4, 4))


def test_grayscale_and_rgba_inputs(run, tmp_path, capsys):
    gray = save(tmp_path / "in" / "gray.png", mode="L")
    rgba = save(tmp_path / "in" / "alpha.png", mode="RGBA")
    code, _, err = cli(capsys, "translate", run, tmp_path / "in", "--out", tmp_path / "o", "--no-progress")
    assert code == 0, err
    for name in ("gray.png", "alpha.png"):
        out = Image.open(tmp_path / "o" / name)
        assert out.mode == "RGB" and out.size == (40, 32)
    t = Translator.from_checkpoint(run, device="cpu")
    assert t(Image.open(gray)).mode == "RGB" and t(Image.open(rgba)).mode == "RGB"


def test_grayscale_model_writes_grayscale(tmp_path, capsys):
    run = train_tiny(tmp_path, channels=1)
    assert checkpoint.load(run)["channels"] == [1, 1]
    src = save(tmp_path / "in" / "colour.png")
    code, _, err = cli(capsys, "translate", run, src, "--out", tmp_path / "o", "--no-progress")
    assert code == 0, err
    out = Image.open(tmp_path / "o" / "colour.png")
    assert out.mode == "L" and out.size == (40, 32)


def test_batches_match_single_images(run, tmp_path):
    t = Translator.from_checkpoint(run, device="cpu", batch_size=2)
    sizes = [(40, 32), (33, 45), (40, 32), (40, 32)]
    images = [Image.open(save(tmp_path / f"{i}.png", size=size, seed=i)) for i, size in enumerate(sizes)]
    batched = t.translate_batch(images)
    assert [im.size for im in batched] == [(40, 32), (33, 45), (40, 32), (40, 32)]
    for img, out in zip(images, batched):
        assert (pixels(out) - pixels(t(img))).abs().max() <= 1


def test_default_out_is_inside_the_run_and_grid(run, tmp_path, capsys):
    src = save(tmp_path / "a.png")
    code, stdout, err = cli(capsys, "translate", run, src, "--grid", "--no-progress")
    assert code == 0, err
    assert (run / "translated_a2b" / "a.png").is_file()
    grid = Image.open(run / "translated_a2b" / "grid_a2b.png")
    assert grid.height == 128 + 8 and grid.width > 2 * 128  # one row: input | output
    assert "grid" in stdout


def test_refuses_to_overwrite_inputs(run, tmp_path, capsys):
    src = save(tmp_path / "in" / "keep.png")
    before = src.read_bytes()
    code, _, err = cli(capsys, "translate", run, tmp_path / "in", "--out", tmp_path / "in", "--no-progress")
    assert code == 2
    assert "overwrite" in err and "keep.png" in err and "--out" in err
    assert src.read_bytes() == before


@pytest.mark.parametrize("args,words", [
    (["no_such_file.png"], ["no_such_file.png", "does not exist"]),
    (["*.nothing_matches"], ["matches no image"]),
    (["notes.txt"], ["notes.txt", "not an image file"]),
])
def test_bad_inputs_exit_2(run, tmp_path, capsys, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    code, _, err = cli(capsys, "translate", run, *args, "--no-progress")
    assert code == 2 and all(w in err for w in words), err


def test_missing_plugin_names_it_and_its_version(run, tmp_path, capsys):
    state = checkpoint.load(run)
    state["config"]["generator"]["name"] = "vangogh_net"
    state["plugins"]["generator"].update(name="vangogh_net", plugin="vangogh", source="entry point",
                                         dist="unpaired-vangogh", version="1.4.2")
    broken = checkpoint.save(state, tmp_path / "broken.pt")
    with pytest.raises(UnpairedError) as info:
        Translator.from_checkpoint(broken)
    msg = str(info.value)
    assert "vangogh_net" in msg and "unpaired-vangogh" in msg and "1.4.2" in msg and "resnet" in msg
    code, _, err = cli(capsys, "translate", broken, save(tmp_path / "x.png"), "--out", tmp_path / "o")
    assert code == 2 and "vangogh_net" in err and "1.4.2" in err
