"""Devices and precision, shared by training, translation and evaluation. ``key`` names the
recipe key or flag that set the value, for error messages."""
import contextlib

import torch

from .errors import UnpairedError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def pick_device(name="auto", key="train.device"):
    """``auto``: the GPU when torch sees one, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UnpairedError(f"{key}: {name!r} is not a device (auto, cpu, cuda, cuda:1 ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UnpairedError(f"{key}: {name!r} asked for, but torch sees no CUDA GPU (use auto or cpu)")
    return device


def autocast_dtype(precision, device, key="train.precision"):
    """The autocast dtype for ``precision`` on ``device`` (None: fp32). ``auto`` is bf16 on a
    CUDA GPU that supports it, fp32 otherwise (on the CPU it measured faster, but its
    convergence is unchecked: BENCHMARKS.md)."""
    if precision not in PRECISIONS:
        raise UnpairedError(f"{key}: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise UnpairedError(f"{key}: fp16 needs a CUDA device (use bf16 or fp32 on the CPU)")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device, dtype):
    """torch.autocast for ``dtype``, or nothing for fp32 (None)."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
