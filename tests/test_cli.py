"""The command line: user errors end with exit code 2 and one message, no traceback."""
import subprocess
import sys

import pytest

from unpaired.cli import main

from helpers import RECIPE, TINY


def run_main(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_print_config(capsys, image_root):
    code, out, _ = run_main(capsys, "run", RECIPE, "--print-config", "train.epochs=7", "--quick")
    assert code == 0
    assert "epochs: 7" in out and "crop_size: 64" in out and "out_dir: runs/forest_abstract_quick" in out


@pytest.mark.parametrize("make_args,words", [
    (lambda root: ["trian.epochs=3"], ["trian.epochs"]),
    (lambda root: ["train.epochs=abc"], ["train.epochs"]),
    (lambda root: ["data.params.root=/no/such/folder"], ["/no/such/folder", "data.params.root"]),
    (lambda root: [f"data.params.root={root}", "generator.name=resnt"], ["generator.name", "resnet"]),
    (lambda root: [f"data.params.root={root}", "losses.cycle.name=bce"], ["losses.cycle", "adversarial"]),
    (lambda root: [f"data.params.root={root}", "losses.adversarial.name=l1"], ["losses.adversarial", "reconstruction"]),
    (lambda root: [f"data.params.root={root}", "generator.params.ngff=2"], ["generator.params.ngff", "ngf"]),
    (lambda root: [f"data.params.root={root}", "train.device=cuda:0"] if True else [], ["train.device"]),
])
def test_user_errors_exit_2_without_traceback(capsys, image_root, tmp_path, make_args, words):
    import torch

    args = make_args(image_root)
    if "train.device=cuda:0" in args and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    code, out, err = run_main(capsys, "run", RECIPE, *TINY, f"out_dir={tmp_path / 'run'}", *args)
    assert code == 2
    assert "Traceback" not in err and err.startswith("error:")
    flat = " ".join(err.split())
    assert all(w in flat for w in words), err


def test_empty_domain_folder_is_named(capsys, image_root, tmp_path):
    for f in (image_root / "trainB").iterdir():
        f.unlink()
    code, _, err = run_main(capsys, "run", RECIPE, *TINY, f"data.params.root={image_root}", f"out_dir={tmp_path / 'r'}")
    assert code == 2 and "trainB" in err and "domain B has no image files" in err


@pytest.mark.slow
def test_debug_shows_the_traceback(image_root):
    proc = subprocess.run([sys.executable, "-m", "unpaired", "--debug", "run", str(RECIPE), "trian.x=1"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "UnpairedError" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "unpaired", "run", str(RECIPE), "trian.x=1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_plugins_lists_builtins_with_parameters(capsys):
    code, out, _ = run_main(capsys, "plugins", "-v")
    assert code == 0
    flat = " ".join(out.split())
    for name in ("resnet", "patchgan", "bce", "lsgan", "l1", "image_folder", "unpaired.plugins.resnet"):
        assert name in flat
    assert "n_blocks=9" in flat and "ndf=64" in flat
    assert "events: on_sample" in flat  # event plugins say which events they handle


def test_local_plugin_file(capsys, tmp_path, image_root):
    plugin = tmp_path / "my_loss.py"
    plugin.write_text(
        "import torch\nfrom unpaired import hookimpl\n\n"
        "@hookimpl\ndef register_losses(register):\n"
        "    register('l2_local', lambda: torch.nn.functional.mse_loss, help='mean squared error')\n")
    code, out, _ = run_main(capsys, "plugins", "--plugins", plugin)
    assert code == 0 and "l2_local" in out
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.read_text() + "\nplugins: [my_loss.py]\n")
    code, _, err = run_main(capsys, "run", recipe, *TINY, f"data.params.root={image_root}",
                            f"out_dir={tmp_path / 'run'}", "losses.cycle.name=l2_local", "train.max_steps=1")
    assert code == 0, err
    assert (tmp_path / "run" / "checkpoints" / "latest.pt").is_file()
