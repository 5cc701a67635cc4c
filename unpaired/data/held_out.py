"""The held-out images a run shows a person: the end-of-run figure's (plugins/figure.py) and
the report's sample timeline (unpaired/report). Both take the same items, so a figure and a
timeline of one run show the same images, spread over the held-out dataset, item i under seed i
(reproducible crops and partners, the global random state untouched), each loaded from its
file at its own resolution when the item names the file."""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from .images import load_image
from .order import SeededItems
from .tensors import to_tensor

if TYPE_CHECKING:
    from contextlib import AbstractContextManager


def spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``n`` items (first and last included): a held-out set
    sorted by name often starts with several images of one kind."""
    if n <= k:
        return list(range(n))
    if k == 1:
        return [0]
    return [round(i * (n - 1) / (k - 1)) for i in range(k)]


def held_out_items(dataset: Any, n: int) -> list[dict[str, Any]]:
    """``n`` items spread over the dataset (all of them when it is smaller), item i under seed i."""
    items = SeededItems(dataset)
    return [items[(i, i)] for i in spread(len(dataset), n)]


def item_image(item: Mapping[str, Any], domain: str, max_side: int) -> torch.Tensor:
    """A (1, C, H, W) tensor in [-1, 1] of ``item[domain]`` ("A" or "B"): its file at its own
    resolution when the item names it (``A_path``), else the item's tensor; a shorter side
    above ``max_side`` is brought down to it."""
    x = item[domain]
    path = item.get(f"{domain}_path")
    if isinstance(path, str) and os.path.isfile(path):
        x = to_tensor(load_image(path, channels=x.shape[0]), x.shape[0])
    h, w = x.shape[-2:]
    if min(h, w) > max_side:
        size = (max(1, round(h * max_side / min(h, w))), max(1, round(w * max_side / min(h, w))))
        x = F.interpolate(x[None].float(), size=size, mode="bicubic", align_corners=False).clamp(-1, 1)[0]
    return x[None]


WATCH_MAX = 8  # train.watch: images shown at most


def watch_images(paths: Iterable[str | os.PathLike], channels: int, max_side: int) -> list[tuple[str, torch.Tensor]]:
    """[(file name, (1, C, H, W) tensor in [-1, 1])] of ``train.watch``: image files, and the
    images in folders, in order, at most WATCH_MAX; a shorter side above ``max_side`` is brought
    down to it. A path that does not exist or holds no image is an error naming it."""
    from ..errors import UnpairedError
    from .images import find_images, is_image_file

    found: list[str | Path] = []
    for raw in paths:
        path = os.path.expanduser(str(raw))
        if os.path.isdir(path):
            found += find_images(path)
        elif os.path.isfile(path) and is_image_file(path):
            found.append(path)
        else:
            raise UnpairedError(f"train.watch: {raw} is not an image file or a folder of images")
    images = []
    for file in found[:WATCH_MAX]:
        x = to_tensor(load_image(file, channels=channels, max_side=max_side * 2), channels)
        images.append((os.path.basename(file), item_image({"A": x}, "A", max_side)))
    return images


def item_name(item: Mapping[str, Any], domain: str, index: int) -> str:
    """What to call an item's image in a caption: its file name, else "A 1", "B 2"..."""
    path = item.get(f"{domain}_path")
    return os.path.basename(path) if isinstance(path, str) and path else f"{domain} {index + 1}"


def eager() -> AbstractContextManager[None]:
    """Within: compiled networks run eagerly (they would recompile for every new image size)."""
    import contextlib

    stance = getattr(torch.compiler, "set_stance", None)
    return stance("force_eager") if stance is not None else contextlib.nullcontext()
