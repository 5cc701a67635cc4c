"""The ``synthetic`` dataset: procedural scenes with a hidden A -> B correspondence.

Translation quality is measurable without any download: every A image has a known true
B counterpart, ``a_to_b(a)``, so generated translations can be scored with the paired
metrics of :mod:`unpaired.evaluation.metrics` (see :func:`ground_truth_pairs`).

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

**Thin structures** (param ``structures: true``; off by default, so earlier numbers stay
reproducible bit for bit): over each scene, before the texture, hard-edged straight lines
exactly 1, 2 and 3 px wide (horizontal or vertical, 30-70% of the image long;
``max(1, size // 32)`` of each width) and small objects (squares and discs 2-5 px across;
``max(2, 3 * size // 32)`` of them), each in a warm colour that contrasts with what lies
under it (dark over bright, bright over dark) and each at least one pixel clear of the others.
They are drawn from a seed stream of their own, so the scene underneath is the one drawn
without them. :func:`structure_masks` (or ``dataset.masks(i)``) says, per pixel, what
a pixel shows: ``background``, ``large`` (the large shapes), ``small`` (small objects),
``line_1px``, ``line_2px``, ``line_3px``; the six masks partition the image, so translation
quality can be scored per structure (a translator that blurs thin lines away can still do well
on the large regions).

**Labels** (param ``labels: true``): each A image's structure map as its label, ``A_label``:
an int64 (H, W) map of the STRUCTURES codes (0 background, 1 large, 2 small, 3-5 the 1-, 2- and
3-px lines); ``label_classes`` says {"A": 6}. For the constraints (unpaired.engine.constraints).
"""
from __future__ import annotations

import colorsys
import math

import numpy as np
import torch
import torch.nn.functional as F

from unpaired.api import UnpairedError, hookimpl, one_of

__all__ = ["SyntheticDataset", "make_synthetic", "a_to_b", "render_scene", "ground_truth_pairs",
           "training_b", "structure_masks", "STRUCTURES", "LINE_WIDTHS"]

# Seed streams: scenes are drawn from numpy's SeedSequence([seed, stream, index]), so the
# three sets never share a scene whatever n is.
_STREAMS = {"train": 0, "train_b": 1, "test": 2}

CHANNEL_ORDER = (2, 0, 1)  # output R, G, B take input B, R, G
GAMMA = 0.7
SHARPEN_AMOUNT = 0.6
SHARPEN_SIGMA = 1.0

# Per-pixel structure classes (codes of the label map, in drawing order: later ones lie on top).
LINE_WIDTHS = (1, 2, 3)
MAX_SIZE = 4096  # a scene's side: its drawing holds a few float images of size x size (4096: ~1 GB)
STRUCTURES = ("background", "large", "small", *(f"line_{w}px" for w in LINE_WIDTHS))


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


def render_scene(rng: np.random.Generator, size: int, structure_rng: np.random.Generator | None = None) -> torch.Tensor:
    """One domain-A scene (3, size, size) in [0, 1], drawn with ``rng``; with ``structure_rng``,
    thin lines and small objects drawn with it lie over the same scene."""
    return _render(rng, size, structure_rng)[0]


def _render(rng: np.random.Generator, size: int, structure_rng: np.random.Generator | None):
    """(image (3, size, size) in [0, 1], label map (size, size) of STRUCTURES codes)."""
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")

    # background: a gradient between two muted warm colours along a random direction
    angle = rng.uniform(0, 2 * math.pi)
    t = (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle)
    t = (t - t.min()) / (t.max() - t.min())
    low, high = _warm(rng, (0.15, 0.5), (0.2, 0.55)), _warm(rng, (0.15, 0.5), (0.35, 0.7))
    image = low * (1 - t) + high * t

    # shapes: soft-edged ellipses and rectangles, shaded darker away from their centre
    cover = torch.zeros(size, size)
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
        cover = torch.maximum(cover, alpha)
    labels = (cover > 0.5).to(torch.int64)  # 0 background, 1 large

    if structure_rng is not None:
        image = _draw_structures(structure_rng, image, labels)

    # texture: soft blotches and fine grain, in brightness
    blotches = 0.08 * _smooth_noise(rng, size, max(2, size // 8))
    grain = 0.04 * torch.from_numpy(rng.standard_normal((1, size, size))).float()
    return (image * (1 + blotches + grain)).clamp(0, 1), labels


# --------------------------------------------------------------------------- thin structures
def _structure_counts(size: int) -> tuple[int, int]:
    """(lines of each width, small objects) for a scene of ``size``."""
    return max(1, size // 32), max(2, 3 * size // 32)


def _place(rng: np.random.Generator, free: np.ndarray, height: int, width: int) -> tuple[int, int] | None:
    """A random top-left corner for a height x width box that, grown by one pixel, lies on free
    pixels, at least one pixel inside the image; None when 100 draws find no room."""
    size = free.shape[0]
    if height > size - 2 or width > size - 2:
        return None
    for _ in range(100):
        top, left = int(rng.integers(1, size - height)), int(rng.integers(1, size - width))
        if free[top - 1:top + height + 1, left - 1:left + width + 1].all():
            return top, left
    return None


def _contrasting(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A warm colour (3, 1) that stands out from the pixels ``under`` it (3, k): dark over
    bright, bright over dark."""
    if float(under.mean()) > 0.45:
        colour = _warm(rng, (0.4, 0.9), (0.05, 0.25))
    else:
        colour = _warm(rng, (0.2, 0.7), (0.85, 1.0))
    return colour.numpy().reshape(3, 1)


def _draw_structures(rng: np.random.Generator, image: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Hard-edged lines 1-3 px wide and small objects over ``image``; marks them in ``labels``
    (in place)."""
    size = image.shape[-1]
    pixels, codes = image.numpy().copy(), labels.numpy()  # numpy: cheap on many small boxes
    free = np.ones((size, size), dtype=bool)
    per_width, objects = _structure_counts(size)
    # (label code, height, width, which pixels of the box; None: all)
    boxes: list[tuple[int, int, int, np.ndarray | None]] = []
    for w in sorted(LINE_WIDTHS, reverse=True):  # the widest first: they are the hardest to fit
        for _ in range(per_width):
            length = int(rng.integers(round(0.3 * size), round(0.7 * size) + 1))
            height, width = (w, length) if rng.uniform() < 0.5 else (length, w)
            boxes.append((STRUCTURES.index(f"line_{w}px"), height, width, None))
    for _ in range(objects):
        side = int(rng.integers(2, 6))
        shape = None
        if rng.uniform() < 0.5 and side >= 4:  # smaller discs are squares on the pixel grid
            c = np.arange(side) + 0.5 - side / 2
            shape = (c[:, None] ** 2 + c[None, :] ** 2) < (side / 2 - 0.25) ** 2
        boxes.append((STRUCTURES.index("small"), side, side, shape))
    for code, height, width, shape in boxes:
        corner = _place(rng, free, height, width)
        if corner is None:
            continue
        top, left = corner
        rows, cols = np.nonzero(np.ones((height, width), dtype=bool) if shape is None else shape)
        rows, cols = rows + top, cols + left
        pixels[:, rows, cols] = _contrasting(rng, pixels[:, rows, cols])
        codes[rows, cols] = code
        free[top - 1:top + height + 1, left - 1:left + width + 1] = False
    return torch.from_numpy(pixels)


def _render_item(seed: int, stream: str, index: int, size: int, structures: bool):
    """Scene ``index`` of ``stream``: (image in [-1, 1], label map)."""
    key = [seed, _STREAMS[stream], index]
    # the structures have a seed stream of their own: the scene under them is the one drawn without them
    structure_rng = np.random.default_rng([*key, 1]) if structures else None
    image, labels = _render(np.random.default_rng(key), size, structure_rng)
    return image * 2 - 1, labels


def _scene(seed: int, stream: str, index: int, size: int, structures: bool = False) -> torch.Tensor:
    return _render_item(seed, stream, index, size, structures)[0]


def _masks(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    return {name: labels == code for code, name in enumerate(STRUCTURES)}


# --------------------------------------------------------------------------- dataset
def _check_params(n: int, size: int, split: str, seed: int, structures: bool = False) -> None:
    one_of("data.params.split", split, ("train", "test"))
    if not isinstance(n, int) or n < 1:
        raise UnpairedError(f"data.params.n: the number of scenes must be a positive integer; got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= MAX_SIZE or size % 4:
        raise UnpairedError(
            f"data.params.size: {size!r} must be an integer from 16 to {MAX_SIZE} and a multiple of 4 "
            "(generators need it); try 64"
        )
    if not isinstance(seed, int) or seed < 0:
        raise UnpairedError(f"data.params.seed: {seed!r} must be a non-negative integer")
    if not isinstance(structures, bool):
        raise UnpairedError(f"data.params.structures: {structures!r} must be true or false")


class SyntheticDataset(torch.utils.data.Dataset):
    """Procedural A scenes and their hidden B counterparts; see the module docstring."""

    def __init__(self, size: int = 64, n: int = 200, split: str = "train", seed: int = 0,
                 structures: bool = False, labels: bool = False) -> None:
        _check_params(n, size, split, seed, structures)
        if not isinstance(labels, bool):
            raise UnpairedError(f"data.params.labels: {labels!r} must be true or false")
        self.size, self.n, self.split, self.seed, self.structures = size, n, split, seed, structures
        self.labels = labels
        self.label_classes = {"A": len(STRUCTURES)} if labels else {}
        # the test split's items are aligned pairs: evaluation scores A->B against the truth
        self.paired = split == "test"

    def __len__(self) -> int:
        return self.n

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} scenes")

    def __getitem__(self, index: int) -> dict:
        self._check_index(index)
        a, label = _render_item(self.seed, self.split, index, self.size, self.structures)
        extra = {"A_label": label.long()} if self.labels else {}
        if self.split == "test":
            return {"A": a, "B": a_to_b(a), **extra}
        b_index = int(torch.randint(self.n, ()))  # unaligned: the engine seeds torch per item
        return {"A": a, "B": a_to_b(_scene(self.seed, "train_b", b_index, self.size, self.structures)), **extra}

    def masks(self, index: int) -> dict[str, torch.Tensor]:
        """What each pixel of item ``index``'s A image (and so of its true B) shows: one bool
        (H, W) mask per name in STRUCTURES; they partition the image."""
        self._check_index(index)
        return _masks(_render_item(self.seed, self.split, index, self.size, self.structures)[1])


def make_synthetic(size: int = 64, n: int = 200, split: str = "train", seed: int = 0,
                   structures: bool = False, labels: bool = False) -> SyntheticDataset:
    """Factory for the ``synthetic`` dataset."""
    return SyntheticDataset(size=size, n=n, split=split, seed=seed, structures=structures, labels=labels)


def ground_truth_pairs(n: int, size: int = 64, seed: int = 0, split: str = "test",
                       structures: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` A scenes of ``split`` and their true B counterparts, each (n, 3, H, W)
    in [-1, 1]; the test pairs are those of the test split's items. Score a generator with
    e.g. ``unpaired.evaluation.metrics.l1(G_AB(A), B)``."""
    _check_params(n, size, split, seed, structures)
    a = torch.stack([_scene(seed, split, i, size, structures) for i in range(n)])
    return a, a_to_b(a)


def training_b(n: int, size: int = 64, seed: int = 0, structures: bool = False) -> torch.Tensor:
    """The B images of the train split of ``n`` scenes, (n, 3, H, W) in [-1, 1]: every B a
    training item can draw, i.e. the real images a discriminator of B learns from (to compare
    its verdicts on them with those on held-out B images: overfitting)."""
    _check_params(n, size, "train", seed, structures)
    return a_to_b(torch.stack([_scene(seed, "train_b", i, size, structures) for i in range(n)]))


def structure_masks(n: int, size: int = 64, seed: int = 0, split: str = "test",
                    structures: bool = True) -> dict[str, torch.Tensor]:
    """Per-pixel masks of the first ``n`` scenes of ``split`` (those of :func:`ground_truth_pairs`
    with the same arguments): ``{name: bool (n, H, W)}`` for each name in STRUCTURES
    (background, large, small, line_1px, line_2px, line_3px); every pixel is in exactly one.
    Without ``structures`` only background and large are non-empty."""
    _check_params(n, size, split, seed, structures)
    labels = torch.stack([_render_item(seed, split, i, size, structures)[1] for i in range(n)])
    return _masks(labels)


@hookimpl
def register_datasets(register) -> None:
    register(
        "synthetic",
        make_synthetic,
        help="Procedural warm-coloured scenes (A) and a hidden colour/contrast remapping of them (B); "
        "no download, test split scored against the true counterparts. Params: size, n, split, seed, "
        "structures (true: thin lines 1-3 px wide and small objects over the scenes, with per-pixel masks), "
        "labels (true: each A image's structure map as A_label, for constraints).",
    )
