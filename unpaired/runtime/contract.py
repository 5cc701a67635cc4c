"""The plugin contract's rules on what a network or a dataset gives, in one place.

Two callers apply them: the engine's probes at the start of every run
(:mod:`unpaired.runtime.probe`: one forward of each network the recipe built, a few items of its
dataset) and a plugin's own tests (:mod:`unpaired.testing`: many shapes and channels, plus what
only a test can afford: finite values, ranges, gradients). Each rule returns the problem in
words, or None; the callers say where (the recipe key, or the factory and its input).
"""
from __future__ import annotations

from typing import Any

import torch

GENERATOR = "a generator maps (N, Cin, H, W) float32 to (N, Cout, H, W) float32 of the same H, W"
DISCRIMINATOR = "a discriminator maps (N, C, H, W) to raw logits (N, 1, h, w) or (N, 1)"
DATASET = "items are dicts of 'A' and 'B' float tensors (C, H, W), H and W multiples of 4"
SIZE_MULTIPLE = 4


def generator_output(x: torch.Tensor, y: Any, out_channels: int) -> str | None:
    """What is wrong with ``y``, a generator's output for ``x``, against :data:`GENERATOR`."""
    if not isinstance(y, torch.Tensor):
        return f"returned a {type(y).__name__}, not a tensor"
    want = (x.shape[0], out_channels, *x.shape[2:])
    if tuple(y.shape) != want:
        return f"turned a {tuple(x.shape)} input into {tuple(y.shape)}, not {want}"
    if y.dtype != x.dtype:
        return f"returned {y.dtype} for a {x.dtype} input"
    return None


def discriminator_output(x: torch.Tensor, y: Any) -> str | None:
    """What is wrong with ``y``, a discriminator's output for ``x``, against :data:`DISCRIMINATOR`."""
    if not isinstance(y, torch.Tensor):
        return f"returned a {type(y).__name__}, not a tensor"
    if not y.is_floating_point() or y.dim() not in (2, 4) or tuple(y.shape[:2]) != (x.shape[0], 1):
        return f"returned {tuple(y.shape)} ({y.dtype}) for a {tuple(x.shape)} input"
    if y.numel() == 0:
        return f"returned an empty logit map {tuple(y.shape)} for a {tuple(x.shape)} input"
    return None


def dataset_item(item: Any) -> str | None:
    """What is wrong with one dataset item against :data:`DATASET`."""
    if not isinstance(item, dict) or "A" not in item or "B" not in item:
        keys = ", ".join(map(str, item)) if isinstance(item, dict) else type(item).__name__
        return f"is not a dict with tensors 'A' and 'B' (got {keys})"
    for domain in ("A", "B"):
        t = item[domain]
        if not isinstance(t, torch.Tensor) or t.dim() != 3:
            return f"[{domain!r}] is not a (C, H, W) tensor (got {getattr(t, 'shape', type(t).__name__)})"
        if not t.is_floating_point():
            return f"[{domain!r}] is {t.dtype}, not a float tensor"
        if t.shape[1] % SIZE_MULTIPLE or t.shape[2] % SIZE_MULTIPLE:
            return (f"[{domain!r}] is {t.shape[1]}x{t.shape[2]}: sides must be multiples of {SIZE_MULTIPLE} "
                    "(set the crop size accordingly)")
    return None
