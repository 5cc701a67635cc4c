"""torchvision, imported where it is used (the FID Inception network), with one line saying what
is wrong when it does not load. A torchvision built for another torch (``pip`` falling back to a
CUDA torchvision beside a CPU torch, say) fails on import with "operator torchvision::nms does
not exist"; training, translation, ``unpaired plugins`` and ``--help`` never import it, so only
the command that needs it stops, with the fix."""
from __future__ import annotations

import importlib
import importlib.metadata as md
import re
from types import ModuleType

import torch

from ..errors import UnpairedError


def require_torchvision() -> ModuleType:
    """The torchvision module, or an UnpairedError naming both versions and the pair to install."""
    try:
        return importlib.import_module("torchvision")
    except Exception as exc:  # torchvision raises RuntimeError, ImportError, OSError ... when broken
        raise UnpairedError(mismatch_message(exc)) from None


def matching_torchvision(torch_version: str) -> str | None:
    """The torchvision release made for ``torch_version`` ("2.14.1+cpu" -> "0.29.1"), or None.
    torchvision 0.(N+15) goes with torch 2.N since torch 2.0 / torchvision 0.15."""
    found = re.match(r"2\.(\d+)(?:\.(\d+))?", torch_version)
    if not found:
        return None
    return f"0.{int(found.group(1)) + 15}.{found.group(2) or 0}"


def mismatch_message(exc: BaseException) -> str:
    """One line: what failed, both versions, and the command that installs a matching pair."""
    torch_version = torch.__version__
    try:
        vision_version = md.version("torchvision")
    except md.PackageNotFoundError:
        vision_version = None
    want = matching_torchvision(torch_version)
    base = torch_version.split("+")[0]
    pair = f"pip install torch=={base} torchvision=={want}" if want else "pip install torch torchvision"
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if vision_version is None:
        return f"torchvision is not installed (torch {torch_version}): {pair}"
    return (f"torchvision {vision_version} does not match torch {torch_version} ({reason}): reinstall them as a "
            f"pair from the same index, e.g. {pair} (add the same --index-url to both, e.g. "
            "https://download.pytorch.org/whl/cpu for the CPU-only build)")
