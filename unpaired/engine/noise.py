"""Stochastic translators: translations that draw noise, made reproducible.

An objective's translator (``Objective.translator(direction)``) may be a procedure that draws
random numbers (UNSB's sampler). It declares them with an attribute ``noise_inputs``:
``{name: shape}``, each shape a tuple whose entries are ints or the letters ``"N"`` (the batch
size: always the first entry), ``"H"`` and ``"W"`` (the height and width of the image the module
is given, padded to its size multiple; when present, the last two entries). Every noise input is
standard normal (the module scales it). UNSB's, with 5 steps and a 256-wide noise vector:
``{"z": ("N", 5, 256), "eps": ("N", 4, 3, "H", "W")}``.

Its forward takes them as keyword arguments, ``module(x, z=..., eps=...)``; without them it
draws them itself with :func:`draw` from torch's global generator — what training, the sample
grids and evaluation do, under seeds the engine sets (``train.seed``; evaluation's seed 0).

Where one translation must be reproducible, the engine hands them in:

* ``translate``, video and ``Translator(seed=N)`` read them from a :class:`NoiseField`: noise
  over image coordinates, drawn in blocks from generators seeded by (seed, input, block). An
  image's noise depends on the seed and its pixels' positions only — not on the batch, the
  order, the device, or tiling: each tile reads its own region of the same field.
* ``export`` makes each noise input an input of the exported graph, named as here.
"""
from __future__ import annotations

import torch

from ..errors import UnpairedError

BATCH, HEIGHT, WIDTH = "N", "H", "W"
BLOCK = 64  # the side of the blocks a NoiseField draws spatial noise in
_MIX = 1_000_003


def noise_inputs(module) -> dict:
    """The module's declared noise inputs, checked ({} for a deterministic translator)."""
    declared = getattr(module, "noise_inputs", None) or {}
    if not isinstance(declared, dict):
        raise UnpairedError(f"{type(module).__name__}.noise_inputs must be a dict {{name: shape}}, not "
                            f"{type(declared).__name__}")
    for name, shape in declared.items():
        shape = tuple(shape)
        ok = (isinstance(name, str) and name.isidentifier() and len(shape) >= 1 and shape[0] == BATCH
              and all(s in (HEIGHT, WIDTH) or (isinstance(s, int) and not isinstance(s, bool) and s > 0)
                      for s in shape[1:]))
        spatial = [s for s in shape if s in (HEIGHT, WIDTH)]
        if ok and spatial:
            ok = shape[-2:] == (HEIGHT, WIDTH) and len(spatial) == 2
        if not ok:
            raise UnpairedError(
                f"{type(module).__name__}.noise_inputs[{name!r}] = {shape!r}: a shape starts with 'N' (the batch), "
                "has positive ints and, when the noise is spatial, ends with 'H', 'W' (docs/plugins.md, "
                "'Stochastic translators')")
    return {name: tuple(shape) for name, shape in declared.items()}


def is_stochastic(module) -> bool:
    return bool(noise_inputs(module))


def shape_for(template, n: int, height: int, width: int) -> tuple:
    """A declared shape with the batch size and the image's height and width filled in."""
    return tuple({BATCH: n, HEIGHT: height, WIDTH: width}.get(s, s) for s in template)


def draw(module, x: torch.Tensor, generator: torch.Generator | None = None) -> dict:
    """Every noise input ``module`` declares, standard normal, for the image batch ``x`` (N, C,
    H, W): from torch's global generator on ``x``'s device, or from ``generator`` (a CPU
    ``torch.Generator``: the same numbers on any device), moved to ``x``'s device."""
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    out = {}
    for name, template in noise_inputs(module).items():
        shape = shape_for(template, n, h, w)
        if generator is None:
            out[name] = torch.randn(shape, device=x.device)
        else:
            out[name] = torch.randn(shape, generator=generator).to(x.device)
    return out


def _seed(*parts: int) -> int:
    value = 0
    for p in parts:
        value = (value * _MIX + int(p)) % (2 ** 63)
    return value


class NoiseField:
    """Seeded noise over image coordinates for a stochastic translator's ``noise_inputs``.

    ``field.region(n, top, left, height, width)`` gives each noise input for a batch of ``n``
    images whose pixel (0, 0) sits at (``top``, ``left``) of the field: spatial noise is the
    field's region (drawn in BLOCK x BLOCK blocks, each from a generator seeded by the seed,
    the input's index and the block's position), other noise one draw per seed and input.
    Every image of the batch gets the same noise, so a translation depends on the seed and the
    image only."""

    def __init__(self, module, seed: int) -> None:
        self.templates = noise_inputs(module)
        self.seed = int(seed)

    def region(self, n: int, top: int, left: int, height: int, width: int, device=None) -> dict:
        out = {}
        for index, (name, template) in enumerate(self.templates.items()):
            inner = shape_for(template[1:], 1, height, width)
            if template[-1] == WIDTH:
                one = self._spatial(index, inner[:-2], top, left, height, width)
            else:
                one = torch.randn(inner, generator=torch.Generator().manual_seed(_seed(self.seed, index)))
            out[name] = one.unsqueeze(0).expand(n, *one.shape).to(device)
        return out

    def _spatial(self, index, lead, top, left, height, width):
        out = torch.empty(*lead, height, width)
        for by in range(top // BLOCK, (top + height - 1) // BLOCK + 1):
            for bx in range(left // BLOCK, (left + width - 1) // BLOCK + 1):
                g = torch.Generator().manual_seed(_seed(self.seed, index, by, bx))
                block = torch.randn(*lead, BLOCK, BLOCK, generator=g)
                y0, x0 = max(top, by * BLOCK), max(left, bx * BLOCK)
                y1, x1 = min(top + height, (by + 1) * BLOCK), min(left + width, (bx + 1) * BLOCK)
                out[..., y0 - top:y1 - top, x0 - left:x1 - left] = block[..., y0 - by * BLOCK:y1 - by * BLOCK,
                                                                          x0 - bx * BLOCK:x1 - bx * BLOCK]
        return out
