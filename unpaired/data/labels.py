"""Labels beside images: for each image a PNG of class indices (0 .. K-1, one channel) or a
0/255 mask (two classes: 255 is class 1), with the image's stem, in the folder beside the
image folder named ``<folder>_label`` (``trainA_label/`` for ``trainA/``, ``photos_label/`` for
``photos/``). :func:`scan_labels` finds and checks them all before training (a missing label, a
label of another size, a value out of range: each named); a dataset loads them with the very
same resize (nearest), crop and flip as their image (``image_folder``).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UnpairedError

LABEL_SUFFIX = "_label"
MAX_CLASSES = 255


def label_folder(image_folder: str | os.PathLike) -> Path:
    """The folder a domain's labels are in: ``<image folder>_label`` beside it."""
    folder = Path(image_folder)
    return folder.with_name(folder.name + LABEL_SUFFIX)


@dataclass
class Labels:
    """The labels of one image folder: ``paths`` (one per image, in the images' order),
    ``classes`` (K), ``mask`` (True for 0/255 masks, read as classes 0 and 1) and ``pixels``
    (how many pixels of each class over the folder)."""

    folder: Path
    paths: list[Path]
    classes: int
    mask: bool
    pixels: list[int] = field(default_factory=list)


def read_label(path: str | os.PathLike) -> np.ndarray:
    """A label file as a (H, W) uint8 array of its stored values; an UnpairedError naming the
    file when it is not a one-channel image."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "1", "I", "I;16"):
                raise UnpairedError(f"label {path}: mode {im.mode} is not a label: save one channel of class "
                                    "indices (PNG mode L or P) or a 0/255 mask")
            values = np.asarray(im.convert("L") if im.mode == "1" else im)
    except UnpairedError:
        raise
    except Exception as exc:
        raise UnpairedError(f"label {path}: cannot read it ({type(exc).__name__}: {exc})") from None
    if values.max(initial=0) > MAX_CLASSES:
        raise UnpairedError(f"label {path}: value {int(values.max())} is out of range (at most {MAX_CLASSES} classes)")
    return values.astype(np.uint8)


def scan_labels(images: Sequence[Path], folder: str | os.PathLike, key: str,
                classes: int | None = None) -> Labels:
    """The labels of ``images`` in ``folder``, every one read and checked: present (same stem,
    ``.png``), the image's size, values in 0 .. ``classes`` - 1 (``classes`` None: the largest
    value + 1; all 0/255: a mask of 2 classes). ``key`` names the recipe key in errors."""
    folder = Path(folder)
    paths = [folder / f"{p.stem}.png" for p in images]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise UnpairedError(f"{key}: {len(missing)} of {len(images)} images have no label in {folder} (a PNG with "
                            f"the image's name), e.g. {missing[0].name} for {images[paths.index(missing[0])].name}")
    seen: set[int] = set()
    arrays = []
    for image, path in zip(images, paths):
        values = read_label(path)
        with Image.open(image) as im:
            size = im.size
        if (values.shape[1], values.shape[0]) != size:
            raise UnpairedError(f"label {path}: {values.shape[1]} x {values.shape[0]} pixels, its image {image} is "
                                f"{size[0]} x {size[1]}: a label has its image's size")
        seen.update(np.unique(values).tolist())
        arrays.append(values)
    mask = classes is None and seen <= {0, 255} and 255 in seen
    if mask:
        found = 2
    else:
        found = max(seen, default=0) + 1
        if classes is not None and found > classes:
            bad = next(p for p, v in zip(paths, arrays) if int(v.max()) >= classes)
            raise UnpairedError(f"label {bad}: value {int(max(seen))} is not a class of {key.rsplit('.', 1)[0]}"
                                f".label_classes={classes} (0 .. {classes - 1})")
    k = classes or found
    pixels = np.zeros(k, dtype=np.int64)
    for values in arrays:
        counts = np.bincount((values == 255).astype(np.int64).ravel() if mask else values.ravel(), minlength=k)
        pixels += counts[:k]
    return Labels(folder, paths, k, mask, pixels.tolist())
