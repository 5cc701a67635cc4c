"""Shared fixtures: the plugin registered (through its entry point when the package is
installed, else at run time), tiny image folders and tiny recipes."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import unpaired

RECIPE = Path(__file__).resolve().parents[1] / "recipe.yaml"
TINY = ["generator.params={ngf: 4, num_downs: 3}", "discriminator.params={ndf: 4, n_layers: 2}",
        "data.params.load_size=36", "data.params.crop_size=32", "data.num_workers=0", "data.batch_size=1",
        "train.max_steps=2", "train.log_every=1", "train.sample_every=2", "train.checkpoint_every=2",
        "train.samples=2", "disable_plugins=[progress]"]


@pytest.fixture(autouse=True, scope="session")
def plugin_registered():
    """unpaired finds this package through its entry point once it is pip-installed; a source
    checkout on PYTHONPATH (no dist metadata) registers the plugin module at run time instead."""
    if "gcgan" in unpaired.get_registry().names("objective"):
        yield
        return
    from unpaired_unet import plugin

    name = unpaired.register_plugin(plugin, name="unpaired_unet")
    yield
    unpaired.unregister_plugin(name)


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture
def image_root(tmp_path):
    """ROOT/{trainA,trainB,testA,testB}: 4 smooth random colour images each, 48x40 px (sides
    that are not multiples of the U-Net's 2**num_downs: translate pads them)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for folder in ("trainA", "trainB", "testA", "testB"):
        (root / folder).mkdir(parents=True)
        for i in range(4):
            low = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            Image.fromarray(low).resize((48, 40), Image.BILINEAR).save(root / folder / f"{i}.png")
    return root


@pytest.fixture
def tiny_recipe(image_root, tmp_path):
    """overrides -> the example recipe, resolved, with tiny nets on tiny images."""
    from unpaired.recipe.config import load_recipe

    def make(*overrides, out="run"):
        base = [f"data.params.root={image_root}", f"out_dir={tmp_path / out}", *TINY]
        return load_recipe(RECIPE, [*base, *overrides])

    return make
