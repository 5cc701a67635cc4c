"""Checkpoint files: written atomically (a temporary file, fsync, rename), loaded without
executing code (``torch.load(..., weights_only=True)``) and upgraded to today's format; what
they hold is defined in :mod:`unpaired.store.format`."""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from . import files
from ..errors import UnpairedError
from .rng import check_rng_state, rng_state, seed_all, set_rng_state  # noqa: F401  (their home before 0.2)

from .format import (FORMAT, READABLE, Checkpoint, channels, chosen_weights, require, upgrade,  # noqa: F401
                     validate)  # (the format)


def save(state: dict, path: str | os.PathLike, kept_step: int | None = None) -> Path:
    """Write ``state`` to ``path`` atomically (``files.atomic_open``). On a full disk (or quota)
    the earlier file at ``path`` is untouched and an UnpairedError says so (``kept_step``: its
    step, when known)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.atomic_open(path, "wb", full_disk=lambda: _no_space_message(state, path, kept_step)) as f:
        torch.save(state, f)
    return path


_no_space = files.no_space
_mount_point = files.mount_point


def state_bytes(state: Any) -> int:
    """About how many bytes ``state`` takes on disk (its tensors)."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_bytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_bytes(v) for v in state)
    return 64


def _no_space_message(state: dict, path: Path, kept_step: int | None) -> str:
    if path.is_file():
        step = f" of step {kept_step}" if kept_step is not None else ""
        kept = f"the checkpoint{step} ({path}) is intact"
    else:
        kept = f"no earlier checkpoint was at {path}"
    return files.no_space_message(path, state_bytes(state), kept) + ". Free some space, then continue with --resume"


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete ``.NAME.tmpPID`` files left in ``folder`` by writers that were killed (their pid
    is gone); returns the paths removed (``files.remove_stale_temps``)."""
    return files.remove_stale_temps(folder)


def load(path: str | os.PathLike, map_location: str = "cpu") -> dict:
    path = Path(path)
    if path.is_dir():
        path = resolve(path)
    if not present(path):
        raise UnpairedError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise UnpairedError(f"checkpoint {path} cannot be read ({_reason(exc)})") from None
    if not isinstance(state, dict) or state.get("format") not in READABLE:
        found = state.get("format") if isinstance(state, dict) else None
        hint = f"; it has format {found!r}, a newer unpaired may read it" if isinstance(found, int) else ""
        raise UnpairedError(f"{path} is not an unpaired checkpoint (formats {', '.join(map(str, READABLE))}){hint}")
    return upgrade(state)


def peek(path: str | os.PathLike) -> dict | None:
    """A checkpoint file's state with its tensors memory-mapped, not read (cheap for the
    step, the recipe, the run's first line); None when the file cannot be read."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    return state if isinstance(state, dict) else None


def peek_step(path: str | os.PathLike) -> int | None:
    """The step a checkpoint file holds (see :func:`peek`), or None."""
    step = (peek(path) or {}).get("step")
    return step if isinstance(step, int) else None


def _reason(exc: BaseException) -> str:
    """torch's error, without its advice to load with weights_only=False (that runs the file's
    code): a checkpoint holding Python objects is refused, not to be loaded another way."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        what = f" ({found.group(1)})" if found else ""
        return (f"it holds Python objects{what} beyond tensors and plain data; unpaired never loads "
                "those, since unpickling them can run code")
    first = re.sub(r"\x1b\[[0-9;]*m", "", text).strip().splitlines()[0] if text.strip() else ""
    return f"{type(exc).__name__}: {first}"


def present(path: Path) -> bool:
    """True when ``path`` is a regular file, False when nothing is there; an UnpairedError when
    something else is (a FIFO, a device, a link to one, a folder): never read, never called missing."""
    path = Path(path)
    if path.is_file():
        return True
    if not os.path.lexists(path):
        return False
    if path.is_symlink() and not path.exists():
        what = f"a broken symbolic link (to {os.readlink(path)})"
    elif path.is_dir():
        what = "a folder"
    else:
        target = f" (a link to {os.path.realpath(path)})" if path.is_symlink() else ""
        what = f"not a regular file but a device, a pipe or a socket{target}"
    raise UnpairedError(f"checkpoint {path} is {what}; a checkpoint is a regular file. Remove or replace {path}")


STEP_FILE = re.compile(r"step_(\d+)\.pt")


def step_file(folder: str | os.PathLike, step: int) -> Path:
    """``folder/step_<N>.pt``: the checkpoint ``train.keep_every`` keeps of step N."""
    return Path(folder) / f"step_{int(step)}.pt"


def kept_steps(folder: str | os.PathLike) -> dict[int, Path]:
    """{step: path} of the step checkpoints in ``folder`` (a run's checkpoints/), by step."""
    folder = Path(folder)
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = STEP_FILE.fullmatch(path.name)
            if match and path.is_file():
                found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def resolve(run_or_checkpoint: str | os.PathLike) -> Path:
    """A run directory -> its checkpoints/latest.pt; a file stays as is."""
    p = Path(run_or_checkpoint)
    if p.is_dir():
        for candidate in (p / "checkpoints" / "latest.pt", p / "latest.pt"):
            if present(candidate):
                return candidate
        raise UnpairedError(f"{p} holds no checkpoint (looked for checkpoints/latest.pt)")
    return p
