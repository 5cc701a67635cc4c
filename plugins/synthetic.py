"""The ``synthetic`` dataset: procedural scenes with a hidden A -> B correspondence.

Translation quality is measurable without any download: every A image has a known true
B counterpart, ``a_to_b(a)``, so generated translations can be scored with the paired
metrics of :mod:`unpaired.metrics` (see :func:`ground_truth_pairs`).

**Domain A**: a muted warm-coloured background gradient with a soft blotchy texture and
fine grain, and 2-4 soft-edged, shaded ellipses and rectangles in vivid warm colours
(hues from red to yellow). Everything is drawn from a seed.

**Domain B**: the same kind of scenes under a fixed transformation :func:`a_to_b`, local
and invertible up to clipping: the colour channels rotate (R, G, B) <- (B, R, G), a hue
rotation of 120 degrees that turns the warm palette into greens, cyans and teals; then a
gamma of 0.7 lifts the darks, and unsharp masking (Gaussian sigma 1, amount 0.6) raises the
local contrast and the texture. Because A's palette is warm only, the two domains differ in
distribution (a discriminator can tell them apart), so the mapping is learnable from
unpaired data; doing nothing (output = input) scores far worse than the true translation.

**Splits.** ``train``: item i is A scene i with a B drawn at random (torch's global RNG,
which the engine seeds per item) from a *separate* stream of n scenes, so the training set
holds no true pair at all. ``test``: n scenes from a disjoint seed stream; items are aligned,
``B`` is exactly ``a_to_b(A)``: the hidden counterpart of A, and A that of B.
"""
from __future__ import annotations

import colorsys
import math

import numpy as np
import torch
import torch.nn.functional as F

from unpaired import hookimpl
from unpaired.errors import UnpairedError

__all__ = ["SyntheticDataset", "make_synthetic", "a_to_b", "render_scene", "ground_truth_pairs"]

# Seed streams: scenes are drawn from numpy's SeedSequence([seed, stream, index]), so the
# three sets never share a scene whatever n is.
_STREAMS = {"train": 0, "train_b": 1, "test": 2}

CHANNEL_ORDER = (2, 0, 1)  # output R, G, B take input B, R, G
GAMMA = 0.7
SHARPEN_AMOUNT = 0.6
SHARPEN_SIGMA = 1.0


# --------------------------------------------------------------------------- the hidden mapping
def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W), radius 3 sigma, reflect padding."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    rows = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    cols = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), rows, groups=channels)
    return F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), cols, groups=channels)


def a_to_b(a: torch.Tensor) -> torch.Tensor:
    """The hidden translation A -> B of images (3, H, W) or (N, 3, H, W) in [-1, 1]:
    channel rotation, gamma 0.7, unsharp masking, clipped to [-1, 1]."""
    batched = a.ndim == 4
    x = (a if batched else a[None]).float()
    x = ((x[:, list(CHANNEL_ORDER)] + 1) / 2).clamp(0, 1) ** GAMMA
    x = x + SHARPEN_AMOUNT * (x - _gaussian_blur(x, SHARPEN_SIGMA))
    b = x.clamp(0, 1) * 2 - 1
    return b if batched else b[0]


# --------------------------------------------------------------------------- scenes
def _warm(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> torch.Tensor:
    hue = rng.uniform(-30, 60) / 360 % 1.0  # red .. orange .. yellow
    rgb = colorsys.hsv_to_rgb(hue, rng.uniform(*sat), rng.uniform(*val))
    return torch.tensor(rgb, dtype=torch.float32).view(3, 1, 1)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> torch.Tensor:
    coarse = torch.from_numpy(rng.standard_normal((1, 1, cells, cells))).float()
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]


def render_scene(rng: np.random.Generator, size: int) -> torch.Tensor:
    """One domain-A scene (3, size, size) in [0, 1], drawn with ``rng``."""
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")

    # background: a gradient between two muted warm colours along a random direction
    angle = rng.uniform(0, 2 * math.pi)
    t = (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle)
    t = (t - t.min()) / (t.max() - t.min())
    low, high = _warm(rng, (0.15, 0.5), (0.2, 0.55)), _warm(rng, (0.15, 0.5), (0.35, 0.7))
    image = low * (1 - t) + high * t

    # shapes: soft-edged ellipses and rectangles, shaded darker away from their centre
    for _ in range(int(rng.integers(2, 5))):
        cx, cy = rng.uniform(0.15, 0.85, size=2)
        rx, ry = rng.uniform(0.08, 0.3, size=2)
        theta = rng.uniform(0, math.pi)
        u = (xs - cx) * math.cos(theta) + (ys - cy) * math.sin(theta)
        v = -(xs - cx) * math.sin(theta) + (ys - cy) * math.cos(theta)
        if rng.uniform() < 0.5:
            radial = torch.sqrt((u / rx) ** 2 + (v / ry) ** 2)
            distance = (radial - 1) * min(rx, ry)
        else:
            radial = torch.maximum((u / rx).abs(), (v / ry).abs())
            distance = torch.maximum(u.abs() - rx, v.abs() - ry)
        alpha = torch.sigmoid(-distance * size / 0.8)  # edge about 1.5 px wide
        colour = _warm(rng, (0.55, 0.95), (0.55, 1.0)) * (1 - 0.3 * radial.clamp(max=1))
        image = image * (1 - alpha) + colour * alpha

    # texture: soft blotches and fine grain, in brightness
    blotches = 0.08 * _smooth_noise(rng, size, max(2, size // 8))
    grain = 0.04 * torch.from_numpy(rng.standard_normal((1, size, size))).float()
    return (image * (1 + blotches + grain)).clamp(0, 1)


def _scene(seed: int, stream: str, index: int, size: int) -> torch.Tensor:
    rng = np.random.default_rng([seed, _STREAMS[stream], index])
    return render_scene(rng, size) * 2 - 1


# --------------------------------------------------------------------------- dataset
def _check_params(n: int, size: int, split: str, seed: int) -> None:
    if split not in ("train", "test"):
        raise UnpairedError(f"data.params.split: {split!r} is not 'train' or 'test'")
    if not isinstance(n, int) or n < 1:
        raise UnpairedError(f"data.params.n: the number of scenes must be a positive integer; got {n!r}")
    if not isinstance(size, int) or size < 16 or size % 4:
        raise UnpairedError(
            f"data.params.size: {size!r} must be an integer >= 16 and a multiple of 4 (generators need it); try 64"
        )
    if not isinstance(seed, int) or seed < 0:
        raise UnpairedError(f"data.params.seed: {seed!r} must be a non-negative integer")


class SyntheticDataset(torch.utils.data.Dataset):
    """Procedural A scenes and their hidden B counterparts; see the module docstring."""

    def __init__(self, size: int = 64, n: int = 200, split: str = "train", seed: int = 0):
        _check_params(n, size, split, seed)
        self.size, self.n, self.split, self.seed = size, n, split, seed
        # the test split's items are aligned pairs: evaluation scores A->B against the truth
        self.paired = split == "test"

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} scenes")
        a = _scene(self.seed, self.split, index, self.size)
        if self.split == "test":
            return {"A": a, "B": a_to_b(a)}
        b_index = int(torch.randint(self.n, ()))  # unaligned: the engine seeds torch per item
        return {"A": a, "B": a_to_b(_scene(self.seed, "train_b", b_index, self.size))}


def make_synthetic(size: int = 64, n: int = 200, split: str = "train", seed: int = 0) -> SyntheticDataset:
    """Factory for the ``synthetic`` dataset."""
    return SyntheticDataset(size=size, n=n, split=split, seed=seed)


def ground_truth_pairs(n: int, size: int = 64, seed: int = 0, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` A scenes of ``split`` and their true B counterparts, each (n, 3, H, W)
    in [-1, 1]; the test pairs are those of the test split's items. Score a generator with
    e.g. ``unpaired.metrics.l1(G_AB(A), B)``."""
    _check_params(n, size, split, seed)
    a = torch.stack([_scene(seed, split, i, size) for i in range(n)])
    return a, a_to_b(a)


@hookimpl
def register_datasets(register):
    register(
        "synthetic",
        make_synthetic,
        help="Procedural warm-coloured scenes (A) and a hidden colour/contrast remapping of them (B); "
        "no download, test split scored against the true counterparts. Params: size, n, split, seed.",
    )
