"""Small things the tests share: tiny image folders and tiny recipes."""
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "forest_abstract.yaml"

TINY = [
    "augment=null",  # the engine as the article ran it; tests that augment say so
    "train.ema=null",  # the trained weights everywhere; tests of the averaged generator say so
    "generator.params={ngf: 4, n_blocks: 1}",
    "discriminator.params={ndf: 4, n_layers: 2}",
    "data.params.load_size=36",
    "data.params.crop_size=32",
    "data.num_workers=0",
    "train.max_steps=4",
    "train.log_every=1",
    "train.sample_every=2",
    "train.checkpoint_every=2",
    "train.samples=2",
]


def make_image_root(root, n=6, size=(48, 40), seed=0):
    """ROOT/{trainA,trainB,testA,testB} of smooth random colour images."""
    rng = np.random.default_rng(seed)
    for folder in ("trainA", "trainB", "testA", "testB"):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            low = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            img = Image.fromarray(low).resize(size, Image.BILINEAR)
            img.save(root / folder / f"{i:02d}.png")
    return root


def tiny_recipe(image_root, out_dir, *overrides):
    from unpaired.recipe.config import load_recipe

    base = [f"data.params.root={image_root}", f"out_dir={out_dir}", "disable_plugins=[progress]", *TINY]
    return load_recipe(RECIPE, [*base, *overrides])


def mean_level_difference(a, b):
    """Mean absolute difference of two same-size images, in levels of 255."""
    x, y = (np.asarray(im.convert("RGB"), dtype=np.float64) for im in (a, b))
    assert x.shape == y.shape, (x.shape, y.shape)
    return float(np.abs(x - y).mean())


def nce_over_every_position(mlps, keys, queries, n, temperature=0.07):
    """CUT's PatchNCE by hand over every position of every layer (order-free): each layer's
    features through its MLP of F, L2-normalised, then the NCE of ``n`` images, averaged."""
    from unpaired.plugins.patchnce import patch_nce_loss

    losses = []
    for kf, qf, mlp in zip(keys, queries, mlps):
        def project(t):
            y = mlp(t.permute(0, 2, 3, 1).reshape(-1, t.shape[1]))
            return y / (y.norm(dim=1, keepdim=True) + 1e-7)
        losses.append(patch_nce_loss(project(qf), project(kf), n, temperature).mean())
    return sum(losses) / len(losses)


def plain_generator_class():
    """A small outside generator (two 3x3 convolutions, no named features, no conditions), as a
    third-party plugin would register it."""
    from torch import nn

    class Plain(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, out_channels, 3, padding=1), nn.Tanh())

        def forward(self, x):
            return self.body(x)

    return Plain


def stripes_root(root, n=4, size=(48, 40)):
    """ROOT/{trainA,trainB,testA,testB}: vertical colour stripes, each 8 px wide and of one of 3
    colours; trainA_label/ and testA_label/ hold each stripe's colour index."""
    colours = np.array([[250, 10, 10], [10, 250, 10], [10, 10, 250]], dtype=np.uint8)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for domain in ("A", "B"):
            (root / f"{split}{domain}").mkdir(parents=True)
            if domain == "A":
                (root / f"{split}A_label").mkdir()
            for i in range(n):
                classes = np.repeat(rng.integers(0, 3, size[0] // 8), 8)[None, :].repeat(size[1], 0)
                Image.fromarray(colours[classes]).save(root / f"{split}{domain}" / f"{i:02d}.png")
                if domain == "A":
                    Image.fromarray(classes.astype(np.uint8)).save(root / f"{split}A_label" / f"{i:02d}.png")
    return root
