"""Random state, in one place: every generator a run draws from (torch's on the CPU and on each
GPU, Python's ``random``, NumPy's global one), captured and restored together (checkpoints,
``--resume``), and :func:`seeded`, a block under a given seed that leaves the caller's state as
it was (dataset items, evaluation)."""
from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import torch

from ..errors import UnpairedError

try:
    import numpy as np
except ImportError:  # numpy is optional
    np = None  # type: ignore[assignment]


def rng_state() -> dict:
    """Every generator's state, as plain data a checkpoint stores (``weights_only`` loading)."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if np is not None:
        kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
        state["numpy"] = [torch.from_numpy(np.asarray(keys).astype("int64")), int(pos), int(has_gauss), float(gauss)]
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state and np is not None:
        keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state(("MT19937", keys.numpy().astype("uint32"), pos, has_gauss, gauss))


def seed_all(seed: int) -> None:
    """Seed torch's (every device's), Python's and NumPy's random generators."""
    torch.manual_seed(seed)
    random.seed(seed)
    if np is not None:
        np.random.seed(seed % 2**32)


@contextlib.contextmanager
def seeded(seed: int, cuda: bool = True) -> Iterator[None]:
    """The block runs with every generator seeded by ``seed``; afterwards they are as before.
    ``cuda=False`` leaves the GPUs' generators alone (a CPU-only block, e.g. a dataset item)."""
    py_state = random.getstate()
    np_state = np.random.get_state() if np is not None else None
    devices = list(range(torch.cuda.device_count())) if cuda and torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        random.seed(seed)
        if np is not None:
            np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(py_state)
            if np is not None:
                np.random.set_state(np_state)


def check_rng_state(state: Any, source: str) -> None:
    """An UnpairedError (starting with ``source``) unless ``state`` is a random state that
    :func:`set_rng_state` takes; the current state is kept either way."""
    saved = rng_state()
    try:
        set_rng_state(state)
    except Exception as exc:
        msg = (str(exc).strip().splitlines() or [""])[0][:200]
        raise UnpairedError(f"{source}: its random state ('rng') is damaged ({type(exc).__name__}: {msg}); the run "
                            "cannot continue to the same numbers from it") from None
    finally:
        set_rng_state(saved)
