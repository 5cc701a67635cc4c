"""Images <-> tensors, in one place. The engine's image tensors are float, channels first,
with values in [-1, 1] (what generators take and give: the plugin contract); files and
displays are 8-bit.

    to_tensor(pil, channels) -> (C, H, W) in [-1, 1]        to_image(t) -> PIL
    from_uint8(t) -> [-1, 1]                                 to_uint8(t) -> uint8 (clamped, rounded)
    pad_to_multiple(x, m) -> (padded, (H, W))                size_multiple(generator) -> int
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from .images import to_8bit

SIZE_MULTIPLE = 4  # the plugin contract: generators accept any H, W that are multiples of 4
# inference pads smaller images (1x1, 3x300) to this many pixels a side, replicating their edge,
# and crops back: a generator's reflection padding needs a few pixels at its lowest resolution
MIN_SIDE = 16


def size_multiple(*generators: object) -> int:
    """The multiple that image sides are padded to for these generators: what each declares
    with a ``size_multiple`` attribute, else the contract's 4; the largest of them."""
    return max(int(getattr(g, "size_multiple", SIZE_MULTIPLE)) for g in generators)


def from_uint8(t: torch.Tensor) -> torch.Tensor:
    """uint8 values (any layout) -> float in [-1, 1]."""
    return t.float().div_(127.5).sub_(1.0)


def to_uint8(t: torch.Tensor) -> torch.Tensor:
    """Values in [-1, 1] (clamped) -> uint8 levels, rounded to the nearest."""
    return ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def to_tensor(img: Image.Image, channels: int) -> torch.Tensor:
    """A PIL image -> (C, H, W) float in [-1, 1]; alpha composited on white, modes converted."""
    img = to_8bit(img, channels)
    w, h = img.size
    t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(h, w, channels)
    return from_uint8(t.permute(2, 0, 1))


def to_image(t: torch.Tensor) -> Image.Image:
    """(C, H, W) in [-1, 1] -> an 8-bit PIL image (L for one channel, RGB for three)."""
    t = to_uint8(t).cpu()
    if t.shape[0] == 1:
        return Image.fromarray(t[0].numpy(), mode="L")
    return Image.fromarray(t[:3].permute(1, 2, 0).contiguous().numpy(), mode="RGB")


def pad_to_multiple(x: torch.Tensor, multiple: int, min_side: int = 0) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (N, C, H, W) on the right and bottom up to multiples of ``multiple``, and to at least
    ``min_side`` pixels a side (reflect where the image is large enough, else replicate);
    returns (padded, (H, W))."""
    h, w = x.shape[-2:]
    ph, pw = (max(side, min_side) - side for side in (h, w))
    ph, pw = ph + -(h + ph) % multiple, pw + -(w + pw) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def sample_grid(rows: Mapping[str, Sequence[torch.Tensor]], pad: int = 2) -> torch.Tensor:
    """One image from an objective's sample rows ({"a2b": (real, translated, reconstructed),
    ...}, batches in [0, 1]): a grid row per image of each entry, entries in order, tiles
    ``pad`` pixels apart on white."""
    lines = []
    for row in rows.values():
        for images in zip(*row):
            lines.append([img.expand(3, -1, -1) if img.shape[0] == 1 else img[:3] for img in images])
    width = max(len(line) for line in lines)
    h = max(t.shape[1] for line in lines for t in line)
    w = max(t.shape[2] for line in lines for t in line)
    grid = torch.ones(3, len(lines) * (h + pad) + pad, width * (w + pad) + pad)
    for y, line in enumerate(lines):
        for x, t in enumerate(line):
            top, left = pad + y * (h + pad), pad + x * (w + pad)
            grid[:, top:top + t.shape[1], left:left + t.shape[2]] = t
    return grid
