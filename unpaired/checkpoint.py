"""Checkpoints: written atomically (a temporary file, fsync, rename), loaded without
executing code (``torch.load(..., weights_only=True)``)."""
import os
import random
from pathlib import Path

import torch

from .errors import UnpairedError

FORMAT = 2  # 2: the objective's networks, optimizers per phase, objective_state, translators
READABLE = (1, 2)  # format 1: unpaired 0.1.0 (CycleGAN only), upgraded on load


def save(state, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


def load(path, map_location="cpu"):
    path = Path(path)
    if path.is_dir():
        path = resolve(path)
    if not path.is_file():
        raise UnpairedError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise UnpairedError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format") not in READABLE:
        found = state.get("format") if isinstance(state, dict) else None
        hint = f"; it has format {found!r}, a newer unpaired may read it" if isinstance(found, int) else ""
        raise UnpairedError(f"{path} is not an unpaired checkpoint (formats {', '.join(map(str, READABLE))}){hint}")
    return upgrade(state)


def upgrade(state):
    """A format-1 checkpoint (unpaired 0.1.0, whose one objective was CycleGAN) in today's
    layout: its pools become the cyclegan objective's state, its generators the translators.
    A rank file (pools and RNG only) is upgraded the same way."""
    if state.get("format") != 1:
        return state
    state = dict(state, format=FORMAT)
    if "pools" in state:
        state["objective_state"] = {"pools": state.pop("pools")}
    if "nets" in state:
        state.setdefault("objective", "cyclegan")
        ca, cb = state.get("channels", (3, 3))
        state.setdefault("translators", {"a2b": {"net": "g_ab", "in_channels": ca, "out_channels": cb},
                                         "b2a": {"net": "g_ba", "in_channels": cb, "out_channels": ca}})
    return state


def resolve(run_or_checkpoint):
    """A run directory -> its checkpoints/latest.pt; a file stays as is."""
    p = Path(run_or_checkpoint)
    if p.is_dir():
        for candidate in (p / "checkpoints" / "latest.pt", p / "latest.pt"):
            if candidate.is_file():
                return candidate
        raise UnpairedError(f"{p} holds no checkpoint (looked for checkpoints/latest.pt)")
    return p


def rng_state():
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np

        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state["numpy"] = [torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(gauss)]
    except ImportError:
        pass
    return state


def seed_all(seed):
    """Seed torch's (every device's), Python's and NumPy's random generators."""
    torch.manual_seed(seed)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        try:
            import numpy as np

            keys, pos, has_gauss, gauss = state["numpy"]
            np.random.set_state(("MT19937", keys.numpy().astype("uint32"), pos, has_gauss, gauss))
        except ImportError:
            pass
