"""The example third-party plugin package (examples/unpaired-unet), pip-installed into a
temporary folder: discovered through its entry point, listed, and used by its recipe."""
import os
import shutil
import subprocess
import sys

import pytest
import torch

from unpaired.recipe.config import load_recipe

from helpers import REPO

EXAMPLE = REPO / "examples" / "unpaired-unet"
RECIPE = EXAMPLE / "recipe.yaml"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """examples/unpaired-unet installed (offline, no dependencies) into a fresh folder."""
    pytest.importorskip("setuptools", reason="building the example without network needs setuptools installed")
    tmp = tmp_path_factory.mktemp("example")
    src = tmp / "src"  # build a copy: the build leaves build/ and *.egg-info behind
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache"))
    target = tmp / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
           "--target", str(target), str(src)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def run_cli(args, site, cwd):
    env = dict(os.environ, PYTHONPATH=str(site), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "unpaired", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_installed_example_is_listed(site, tmp_path):
    listing = run_cli(["plugins", "-v"], site, tmp_path)
    assert listing.returncode == 0, listing.stderr
    out = listing.stdout
    assert "unpaired_unet" in out and "unpaired-unet 0.1.0" in out
    assert "generator unet(ngf=64, num_downs=8, norm='instance', dropout=0.0)" in out
    assert "loss unet_hinge(margin=1.0)" in out
    assert "objective gcgan(transform='rot', share_generator=True, pool_size=50)" in out
    assert "failed" not in out


@pytest.mark.slow
def test_example_recipe_trains_with_the_plugin(site, tmp_path, image_root):
    tiny = ["generator.params={ngf: 4, num_downs: 5}", "discriminator.params={ndf: 4, n_layers: 2}",
            f"data.params.root={image_root}", "data.params.load_size=36", "data.params.crop_size=32",
            "data.num_workers=0", "train.max_steps=2", "train.log_every=1", "train.sample_every=2",
            "train.checkpoint_every=2", "train.samples=2", f"out_dir={tmp_path / 'run'}"]
    run = run_cli(["run", str(RECIPE), "--quick", *tiny], site, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    state = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=True)
    assert state["step"] == 2
    for role, name in (("generator", "unet"), ("loss.adversarial", "unet_hinge")):
        used = state["plugins"][role]
        assert (used["name"], used["dist"], used["version"]) == (name, "unpaired-unet", "0.1.0")
    assert state["plugins"]["discriminator"]["source"] == "builtin"
    # the U-Net's outermost up-step: 2 * ngf (its input and the skip) -> 3 channels
    assert state["nets"]["g_ab"]["ups.4.1.weight"].shape == (8, 3, 4, 4)
    assert (tmp_path / "run" / "samples" / "step_0000002.png").is_file()


def test_example_recipe_crops_fit_the_unet():
    for quick in (False, True):
        cfg = load_recipe(RECIPE, quick=quick)
        assert cfg.generator.name == "unet" and cfg.losses.adversarial.name == "unet_hinge"
        assert cfg.data.params.root == "data/forest_abstract"
        assert cfg.data.params.crop_size % 2 ** cfg.generator.params.num_downs == 0
