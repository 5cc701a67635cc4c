"""Images of any size in bounded memory: overlapping tiles blended with a smooth window.

A generator with instance normalisation normalises each image by its own statistics, so tiles
translated on their own would each get their own tone. Here the statistics of every
instance-norm layer are first recorded on the whole image scaled down to at most
``STATS_SIDE`` pixels on its longer side; every tile is then normalised with those statistics
(the whole image's), so tiles agree. A translator that runs its networks several times (a
sampler's steps, unpaired.engine.noise) has each layer's statistics recorded per pass, and the k-th
pass over a tile uses the k-th pass's statistics; its noise is read from one seeded field over
the whole image, each tile at its own position (``Translator.translate_tensor(origin=...)``).
Tiles overlap by a quarter of their side (at least 64 px) and are blended with a raised-cosine
window. The output is streamed, one row of tiles at a time, into a
preallocated uint8 canvas: the activations held at any time are those of one tile, whatever
the image size.

Default (``tile=None`` in :class:`unpaired.inference.translate.Translator`): an image is translated whole
when the generator computes at most ``WHOLE_MAX_PIXELS`` pixels for it (2048 x 2048, its sides
padded as the generator pads them; a 9-block ResNet at ngf 64 then peaks at about 5 GiB on the
CPU), else in ``DEFAULT_TILE``-pixel tiles.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data.images import to_8bit
from ..data.tensors import MIN_SIDE, from_uint8, to_tensor, to_uint8
from ..errors import UnpairedError

if TYPE_CHECKING:
    from .translate import Translator

Stats = dict[int, list[tuple[torch.Tensor, torch.Tensor]]]  # layer -> (mean, var) per pass

WHOLE_MAX_PIXELS = 2048 * 2048
DEFAULT_TILE = 1024
STATS_SIDE = 1024


MAX_PIXELS = 2 ** 30  # what translate decodes: a gigapixel (3 GiB as RGB), over PIL's bomb guard of 89 MP


@contextlib.contextmanager
def large_images() -> Iterator[None]:
    """Within: images up to MAX_PIXELS load (the user named them; tiles bound the activations)."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max(old or 0, MAX_PIXELS) if old is not None else None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def computed_pixels(width: int, height: int, multiple: int) -> int:
    """The pixels a generator computes for a ``width`` x ``height`` image: its sides padded to at
    least MIN_SIDE and to multiples of ``multiple`` (a 1 x 1,000,000 image computes 16 x 1,000,000)."""
    def side(n: int) -> int:
        n = max(n, MIN_SIDE)
        return n + -n % multiple
    return side(width) * side(height)


def should_tile(width: int, height: int, tile: int | None, multiple: int = 1) -> int:
    """The tile side to use for an image (0: whole image). The default budget counts the pixels
    computed (:func:`computed_pixels`), not the image's own, so a thin image is tiled too."""
    if tile is None:
        return DEFAULT_TILE if computed_pixels(width, height, multiple) > WHOLE_MAX_PIXELS else 0
    return tile if tile and max(width, height) > tile else 0


def _instance_norms(generator: nn.Module) -> list[nn.Module]:
    return [m for m in generator.modules() if isinstance(m, nn.modules.instancenorm._InstanceNorm)]


@contextlib.contextmanager
def recorded_stats(generator: nn.Module, stats: Stats) -> Iterator[Stats]:
    """Within: each instance-norm layer ``i`` appends its input's per-channel (mean, var) to
    ``stats[i]``, a list with one entry per pass through the layer."""
    handles = []
    for i, m in enumerate(_instance_norms(generator)):
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], i: int = i) -> None:
            x = args[0].float()
            stats.setdefault(i, []).append((x.mean(dim=(2, 3), keepdim=True),
                                            x.var(dim=(2, 3), keepdim=True, unbiased=False)))
        handles.append(m.register_forward_pre_hook(hook))
    try:
        yield stats
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def fixed_stats(generator: nn.Module, stats: Stats) -> Iterator[None]:
    """Within: each instance-norm layer normalises with the given statistics, not its input's:
    its k-th pass with ``stats[i][k]``, counted modulo the passes recorded (so each tile's
    passes start again at the first)."""
    patched = []
    for i, m in enumerate(_instance_norms(generator)):
        if not stats.get(i):
            continue
        passes, count = stats[i], [0]

        # m: an instance norm, not annotated as one (mypy would call the patch below a method assignment)
        def forward(x: torch.Tensor, m=m, passes: list[tuple[torch.Tensor, torch.Tensor]] = passes,
                    count: list[int] = count) -> torch.Tensor:
            mean, var = passes[count[0] % len(passes)]
            count[0] += 1
            y = (x - mean.to(x)) * torch.rsqrt(var.to(x) + m.eps)
            if m.affine:
                y = y * m.weight.view(1, -1, 1, 1) + m.bias.view(1, -1, 1, 1)
            return y
        m.forward = forward
        patched.append(m)
    try:
        yield
    finally:
        for m in patched:
            del m.forward


def starts(length: int, tile: int, overlap: int, multiple: int) -> list[int]:
    """Tile start positions along one axis (multiples of ``multiple``), covering ``length``."""
    if length <= tile:
        return [0]
    step = max(multiple, (tile - overlap) // multiple * multiple)
    out = list(range(0, length - tile, step))
    last = (length - tile) // multiple * multiple
    if last > out[-1]:
        out.append(last)
    return out


def window(n: int, at_start: bool, at_end: bool, overlap: int) -> torch.Tensor:
    """1-D weights: raised-cosine ramps over ``overlap`` pixels on sides that meet another tile."""
    w = torch.ones(n)
    o = min(overlap, n)
    ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(o) + 0.5) / o)
    if not at_start:
        w[:o] = torch.minimum(w[:o], ramp)
    if not at_end:
        w[n - o:] = torch.minimum(w[n - o:], ramp.flip(0))
    return w


def translate_tiled(translator: Translator, img: Image.Image, tile: int, overlap: int | None = None) -> Image.Image:
    """``img`` (already resized) translated in tiles of ``tile`` pixels; an 8-bit PIL image."""
    m = translator.multiple
    if tile < 4 * m or tile % m:
        raise UnpairedError(f"--tile: {tile!r} must be a multiple of {m} and at least {4 * m} pixels")
    if overlap is None:  # a quarter of the tile, at least 64 px (the receptive field's edge), at most half
        overlap = max(m, min(tile // 2, max(tile // 4, 64)) // m * m)
    img = to_8bit(img, translator.in_channels)
    width, height = img.size

    # 1. every instance-norm layer's statistics, on the whole image at reduced size
    scale = min(1.0, STATS_SIDE / max(width, height))
    small = img if scale == 1.0 else img.resize((max(1, round(width * scale)), max(1, round(height * scale))),
                                                Image.Resampling.BOX)
    stats: dict = {}
    with recorded_stats(translator.generator, stats):
        translator.translate_tensor(to_tensor(small, translator.in_channels)[None])
    stats = {i: [(mu.to(translator.device), var.to(translator.device)) for mu, var in passes]
             for i, passes in stats.items()}

    source = np.asarray(img).reshape(height, width, -1)  # uint8, H x W x C
    cout = translator.out_channels
    canvas = np.empty((height, width, cout), dtype=np.uint8)
    ys, xs = starts(height, tile, overlap, m), starts(width, tile, overlap, m)
    acc = torch.zeros(cout, height if len(ys) == 1 else tile, width)
    weight = torch.zeros(acc.shape[1], width)
    top = 0  # the image row acc[:, 0] stands for
    with fixed_stats(translator.generator, stats):
        for r, y in enumerate(ys):
            th = (height if r == len(ys) - 1 else y + tile) - y
            for c, x in enumerate(xs):
                tw = (width if c == len(xs) - 1 else x + tile) - x
                part = torch.from_numpy(source[y:y + th, x:x + tw].copy()).permute(2, 0, 1)  # a writable copy
                part = from_uint8(part)[None]
                out = translator.translate_tensor(part, origin=(y, x))[0]
                wy = window(th, y == 0, r == len(ys) - 1, overlap)
                wx = window(tw, x == 0, c == len(xs) - 1, overlap)
                w2 = wy[:, None] * wx[None, :]
                need = y - top + th
                if need > acc.shape[1]:  # the last row of tiles may be taller
                    grow = need - acc.shape[1]
                    acc = torch.cat([acc, acc.new_zeros(cout, grow, width)], 1)
                    weight = torch.cat([weight, weight.new_zeros(grow, width)], 0)
                acc[:, y - top:y - top + th, x:x + tw] += out * w2
                weight[y - top:y - top + th, x:x + tw] += w2
            done = (ys[r + 1] if r + 1 < len(ys) else height) - top  # rows no later tile touches
            block = acc[:, :done] / weight[:done].clamp_min(1e-8)
            block = to_uint8(block).permute(1, 2, 0)
            canvas[top:top + done] = block.numpy()
            acc = torch.cat([acc[:, done:], acc.new_zeros(cout, done, width)], 1)
            weight = torch.cat([weight[done:], weight.new_zeros(done, width)], 0)
            top += done
    if cout == 1:
        return Image.fromarray(canvas[:, :, 0], mode="L")
    return Image.fromarray(canvas[:, :, :3], mode="RGB")
