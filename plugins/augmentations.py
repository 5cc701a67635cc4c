"""Built-in augmentations of what the discriminators see: ``diffaugment`` and ``ada``.

The engine applies the recipe's choice (``augment: {name, params}``) to every discriminator
input, real, generated and pooled, in both updates (unpaired.engine.augment). Both take images in
[-1, 1] and a ``torch.Generator`` that every random number comes from; every draw is per sample.

**diffaugment** (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training",
NeurIPS 2020; the values are the paper's, for images in [-1, 1]):

* ``color``: brightness (add U(-0.5, 0.5)), saturation (scale each pixel's distance from its
  channel mean by U(0, 2)), contrast (scale the distance from the image's mean by U(0.5, 1.5));
* ``translation``: shift by a whole number of pixels up to this fraction of the size on each
  axis (0.125), zeros (mid-grey) where the image moved away;
* ``cutout``: zero a rectangle of this fraction of the size (0.5) at a random place (partly
  outside the image near an edge).

**ada** (Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS
2020): each transform is applied to each image with probability ``p``, which adapts: the
engine hands the real logits of every discriminator loss to ``observe`` and calls ``adapt``
after each step; every ``interval`` steps r_t = E[sign(D(real))] over those steps and every
process is compared with ``target`` and p moves by sign(r_t - target) * images / ``speed``
(``images``: real images per discriminator over the interval), clamped to [0, ``max_p``].
The transforms (``transforms``; a compact subset of the paper's pipeline):

* ``xflip``: mirror left-right;
* ``rotate90``: rotate by 0, 90, 180 or 270 degrees (uniformly);
* ``translation``: shift by U(-0.125, 0.125) of the size per axis, rounded to whole pixels;
* ``scale``: isotropic scaling by 2**N(0, 0.2);
* ``color``: brightness (add N(0, 0.2)), contrast (scale around mid-grey by 2**N(0, 0.5)) and
  saturation (scale each pixel's distance from its channel mean by 2**N(0, 1)), each applied
  with probability p on its own.

The geometric ones are composed into one affine map per image and resampled once (bilinear,
reflected at the borders); an image none of them was drawn for passes unchanged, bit for bit,
so p = 0 is no augmentation at all. Defaults: the paper's target 0.6 and interval 4; ``speed``
500k images in the paper (runs of millions of images) is 1,000 here, scaled to runs of a few
thousand images (a preview of 1,000 steps at batch 1 can take p from 0 to 1); ``max_p`` 0.8,
below which the paper finds its transforms do not leak into the generated images.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from unpaired.api import UnpairedError, flag, hookimpl, number, one_of

ADA_TRANSFORMS = ("xflip", "rotate90", "translation", "scale", "color")
K = "augment.params."  # what param errors name


# --------------------------------------------------------------------------- draws
def _uniform(n, generator, device, low=0.0, high=1.0):
    """(n, 1, 1, 1) draws from U(low, high)."""
    return torch.rand(n, 1, 1, 1, generator=generator, device=device) * (high - low) + low


def _lognormal2(n, generator, device, std):
    """(n,) draws of 2**N(0, std)."""
    return torch.exp2(torch.randn(n, generator=generator, device=device) * std)


# --------------------------------------------------------------------------- DiffAugment
def diff_color(x, generator):
    """Brightness, saturation and contrast, drawn per image (DiffAugment's colour)."""
    n, device = x.shape[0], x.device
    x = x + (_uniform(n, generator, device) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * _uniform(n, generator, device, 0.0, 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(n, generator, device, 0.5, 1.5) + mean


def diff_translation(x, ratio, generator):
    """Each image shifted by whole pixels, up to ``ratio`` of its size per axis, zero-filled."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    device = x.device
    ty = torch.randint(-sh, sh + 1, (n,), generator=generator, device=device)
    tx = torch.randint(-sw, sw + 1, (n,), generator=generator, device=device)
    padded = F.pad(x, (sw, sw, sh, sh))
    rows = torch.arange(h, device=device)[None, :] + sh - ty[:, None]  # output row i shows input row i - ty
    cols = torch.arange(w, device=device)[None, :] + sw - tx[:, None]
    batch = torch.arange(n, device=device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def diff_cutout(x, ratio, generator):
    """Each image with a rectangle of ``ratio`` of its size set to 0, centred at a random pixel."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if ch == 0 or cw == 0:
        return x
    device = x.device
    cy = torch.randint(0, h, (n, 1), generator=generator, device=device) - ch // 2
    cx = torch.randint(0, w, (n, 1), generator=generator, device=device) - cw // 2
    ys, xs = torch.arange(h, device=device)[None, :], torch.arange(w, device=device)[None, :]
    inside_y = (ys >= cy) & (ys < cy + ch)
    inside_x = (xs >= cx) & (xs < cx + cw)
    keep = ~(inside_y[:, :, None] & inside_x[:, None, :])
    return x * keep[:, None].to(x.dtype)


class DiffAugment(nn.Module):
    """DiffAugment (Zhao et al. 2020): ``color``, then ``translation``, then ``cutout``, each
    drawn per image; no state."""

    def __init__(self, color=True, translation=0.125, cutout=0.5) -> None:
        super().__init__()
        self.color = flag(K + "color", color)
        self.translation = float(number(K + "translation", translation, 0.0, 0.5))
        self.cutout = float(number(K + "cutout", cutout, 0.0, 1.0, below=True))

    def forward(self, x, generator):
        if self.color:
            x = diff_color(x, generator)
        if self.translation:
            x = diff_translation(x, self.translation, generator)
        if self.cutout:
            x = diff_cutout(x, self.cutout, generator)
        return x

    def extra_repr(self) -> str:
        return f"color={self.color}, translation={self.translation}, cutout={self.cutout}"


def diffaugment(color=True, translation=0.125, cutout=0.5):
    """DiffAugment's policy: ``color`` (brightness, saturation, contrast: true/false),
    ``translation`` (largest shift, a fraction of the size; 0: off), ``cutout`` (the erased
    rectangle's side, a fraction of the size; 0: off)."""
    return DiffAugment(color, translation, cutout)


# --------------------------------------------------------------------------- ADA
class ADA(nn.Module):
    """Adaptive discriminator augmentation (Karras et al. 2020): the transforms of
    ``transforms``, each applied per image with probability ``p`` (a buffer), which ``adapt``
    moves towards the overfitting signal's ``target``. Buffers (run state): ``p``, ``stats``
    (sum of sign(real logit) and their count since the last adjustment, this process's) and
    ``rt`` (the last r_t; 0 before the first adjustment)."""

    # the buffers (register_buffer in __init__), declared for the type checker: a bare annotation
    # makes no attribute, so register_buffer still accepts the names
    p: torch.Tensor
    stats: torch.Tensor
    rt: torch.Tensor

    def __init__(self, p=0.0, target=0.6, interval=4, speed=1000, max_p=0.8, transforms=ADA_TRANSFORMS) -> None:
        super().__init__()
        self.max_p = float(number(K + "max_p", max_p, 0.0, 1.0, above=True))
        p = float(number(K + "p", p, 0.0, self.max_p))
        self.target = float(number(K + "target", target, -1.0, 1.0))
        self.interval = number(K + "interval", interval, 1, integer=True)
        self.speed = float(number(K + "speed", speed, 0.0, above=True))
        if isinstance(transforms, str) or not isinstance(transforms, (list, tuple)) or not transforms:
            raise UnpairedError(f"augment.params.transforms: {transforms!r} must be a non-empty list of "
                                f"{', '.join(ADA_TRANSFORMS)}")
        for i, name in enumerate(transforms):
            one_of(f"augment.params.transforms[{i}]", name, ADA_TRANSFORMS)
        if len(set(transforms)) != len(transforms):
            raise UnpairedError(f"augment.params.transforms: {list(transforms)} names a transform twice")
        self.transforms = tuple(transforms)
        self.register_buffer("p", torch.tensor(p, dtype=torch.float32))
        self.register_buffer("stats", torch.zeros(2, dtype=torch.float32))
        self.register_buffer("rt", torch.zeros((), dtype=torch.float32))

    # -- the transforms ---------------------------------------------------------------------
    def _gate(self, n, generator, device):
        """(n,) booleans: True with probability p (a tensor: no host sync, no recompile)."""
        return torch.rand(n, generator=generator, device=device) < self.p

    def forward(self, x, generator):
        x = self._geometric(x, generator)
        if "color" in self.transforms:
            x = self._color(x, generator)
        return x

    def _geometric(self, x, generator):
        n, _, h, w = x.shape
        device, use = x.device, self.transforms
        one, zero = torch.ones(n, device=device), torch.zeros(n, device=device)
        moved = torch.zeros(n, dtype=torch.bool, device=device)
        # the sampling map, output pixel -> input pixel, in pixels from the image centre:
        # [[a, b, tx], [c, d, ty]]; every transform's law is symmetric, so it is drawn directly
        a, b, c, d, tx, ty = one, zero, zero, one, zero, zero
        if "xflip" in use:
            gate = self._gate(n, generator, device)
            a = torch.where(gate, -one, one)
            moved |= gate
        if "rotate90" in use:
            gate = self._gate(n, generator, device)
            k = torch.randint(0, 4, (n,), generator=generator, device=device).float()
            k = torch.where(gate, k, zero)  # quarter turns
            cos, sin = (1 - k % 2) * (1 - k), (k % 2) * (2 - k)  # exact: 1, 0, -1, 0 and 0, 1, 0, -1
            a, b, c, d = cos * a - sin * c, cos * b - sin * d, sin * a + cos * c, sin * b + cos * d
            moved |= k != 0
        if "translation" in use:
            gate = self._gate(n, generator, device)
            shift = (torch.rand(n, 2, generator=generator, device=device) * 2 - 1) * 0.125
            tx = torch.where(gate, torch.round(shift[:, 0] * w), zero)
            ty = torch.where(gate, torch.round(shift[:, 1] * h), zero)
            moved |= gate & ((tx != 0) | (ty != 0))
        if "scale" in use:
            gate = self._gate(n, generator, device)
            s = torch.where(gate, _lognormal2(n, generator, device, 0.2), one)
            a, b, c, d = a * s, b * s, c * s, d * s
            moved |= gate
        # to affine_grid's coordinates (-1..1 across the image, align_corners=False): x_n = 2 x / w
        theta = torch.stack([torch.stack([a, b * h / w, tx * 2 / w], 1),
                             torch.stack([c * w / h, d, ty * 2 / h], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        resampled = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return torch.where(moved[:, None, None, None], resampled, x)

    def _color(self, x, generator):
        n, device = x.shape[0], x.device
        zero, one = torch.zeros(n, device=device), torch.ones(n, device=device)
        brightness = torch.where(self._gate(n, generator, device),
                                 torch.randn(n, generator=generator, device=device) * 0.2, zero)
        contrast = torch.where(self._gate(n, generator, device), _lognormal2(n, generator, device, 0.5), one)
        saturation = torch.where(self._gate(n, generator, device), _lognormal2(n, generator, device, 1.0), one)
        x = x + brightness.view(n, 1, 1, 1)
        x = x + (contrast.view(n, 1, 1, 1) - 1) * x  # around mid-grey (0); exactly x when not drawn
        mean = x.mean(dim=1, keepdim=True)
        return x + (saturation.view(n, 1, 1, 1) - 1) * (x - mean)

    # -- the adaptation -----------------------------------------------------------------------
    def observe(self, real_logits) -> None:
        """Count the signs of real logits (less the loss's boundary): tensors only."""
        self.stats[0] += torch.sign(real_logits).sum()
        self.stats[1] += real_logits.numel()

    def adapt(self, step, images, reduce) -> None:
        """Every ``interval`` steps: r_t from the statistics summed over the processes, then p."""
        if step % self.interval:
            return
        signs, count = reduce(self.stats)
        rt = signs / count.clamp(min=1)
        seen = (count > 0).float()  # no discriminator loss observed: p stays
        step_size = images * self.interval / self.speed
        self.p.copy_((self.p + torch.sign(rt - self.target) * seen * step_size).clamp(0.0, self.max_p))
        self.rt.copy_(torch.where(count > 0, rt, self.rt))
        self.stats.zero_()

    def metrics(self):
        return {"ada_p": self.p, "ada_rt": self.rt}

    def extra_repr(self) -> str:
        return (f"target={self.target}, interval={self.interval}, speed={self.speed:g}, max_p={self.max_p}, "
                f"transforms={list(self.transforms)}")


def ada(p=0.0, target=0.6, interval=4, speed=1000, max_p=0.8, transforms=ADA_TRANSFORMS):
    """ADA: ``p`` (the starting probability), ``target`` (of r_t = E[sign(D(real))]),
    ``interval`` (steps between adjustments), ``speed`` (real images over which p can go from 0
    to 1), ``max_p`` (p's ceiling), ``transforms`` (of xflip, rotate90, translation, scale, color)."""
    return ADA(p, target, interval, speed, max_p, list(transforms))


@hookimpl
def register_augmentations(register) -> None:
    register("diffaugment", diffaugment,
             help="DiffAugment: colour, translation, cutout of every discriminator input (Zhao et al. 2020)")
    register("ada", ada, help="ADA: flips, 90-degree rotations, translation, scaling, colour with a probability p "
             "adapted to the discriminator's overfitting (Karras et al. 2020)")
