"""Checkpoints: written atomically (a temporary file, fsync, rename), loaded without
executing code (``torch.load(..., weights_only=True)``)."""
import errno
import os
import pickle
import random
import re
from pathlib import Path

import torch

from .errors import UnpairedError

FORMAT = 2  # 2: the objective's networks, optimizers per phase, objective_state, translators
READABLE = (1, 2)  # format 1: unpaired 0.1.0 (CycleGAN only), upgraded on load


def save(state, path, kept_step=None):
    """Write ``state`` to ``path`` atomically. On a full disk (or quota) the earlier file at
    ``path`` is untouched and an UnpairedError says so (``kept_step``: its step, when known)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        if _no_space(exc):
            raise UnpairedError(_no_space_message(state, path, kept_step)) from None
        raise
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


def _no_space(exc):
    """True for ENOSPC / EDQUOT, also when torch's writer wraps it in a RuntimeError."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return True
        if "No space left on device" in str(seen) or "Disk quota exceeded" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _mount_point(path):
    p = Path(path).resolve()
    try:
        dev = os.stat(p).st_dev
        while p.parent != p and os.stat(p.parent).st_dev == dev:
            p = p.parent
    except OSError:
        pass
    return p


def state_bytes(state):
    """About how many bytes ``state`` takes on disk (its tensors)."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_bytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_bytes(v) for v in state)
    return 64


def _no_space_message(state, path, kept_step):
    need = state_bytes(state) / 2**20
    if path.is_file():
        step = f" of step {kept_step}" if kept_step is not None else ""
        kept = f"the checkpoint{step} ({path}) is intact"
    else:
        kept = f"no earlier checkpoint was at {path}"
    return (f"no space left on the device of {_mount_point(path.parent)} while writing {path}: about "
            f"{max(need, 0.1):.1f} MB needed; {kept}. Free some space, then continue with --resume")


def remove_stale_temps(folder):
    """Delete ``.NAME.tmpPID`` files left in ``folder`` by writers that were killed (their pid
    is gone); returns the paths removed."""
    from .runlock import pid_alive

    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(".*.tmp*"):
        pid = tmp.name.rpartition(".tmp")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def load(path, map_location="cpu"):
    path = Path(path)
    if path.is_dir():
        path = resolve(path)
    if not path.is_file():
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


def peek(path):
    """A checkpoint file's state with its tensors memory-mapped, not read (cheap for the
    step, the recipe, the run's first line); None when the file cannot be read."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    return state if isinstance(state, dict) else None


def peek_step(path):
    """The step a checkpoint file holds (see :func:`peek`), or None."""
    step = (peek(path) or {}).get("step")
    return step if isinstance(step, int) else None


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


def _reason(exc):
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


def require(state, path, *keys):
    """An error naming the checkpoint and the first of ``keys`` it lacks."""
    for key in keys:
        if key not in state:
            raise UnpairedError(f"checkpoint {path} has no {key!r}: it is damaged or was not written by unpaired")
    return state


STEP_FILE = re.compile(r"step_(\d+)\.pt")


def step_file(folder, step):
    """``folder/step_<N>.pt``: the checkpoint ``train.keep_every`` keeps of step N."""
    return Path(folder) / f"step_{int(step)}.pt"


def kept_steps(folder):
    """{step: path} of the step checkpoints in ``folder`` (a run's checkpoints/), by step."""
    folder = Path(folder)
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = STEP_FILE.fullmatch(path.name)
            if match and path.is_file():
                found[int(match.group(1))] = path
    return dict(sorted(found.items()))


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
