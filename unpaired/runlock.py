"""One run per folder: ``OUT_DIR/.lock`` holds the pid and host of the run that owns it.

Taken before anything is written; released when the run ends. A lock whose process is gone
(a run killed with kill -9 or a power cut, on this host) is stale and taken over. Under
torchrun only rank 0 takes it (the other ranks write nothing but their own state files).
"""
import contextlib
import os
import socket
import time
from pathlib import Path

from . import checkpoint
from .errors import UnpairedError

NAME = ".lock"


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _read(path):
    try:
        fields = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        return {"pid": int(fields.get("pid", "-1")), "host": fields.get("host", "?"), "since": fields.get("since", "?")}
    except (OSError, ValueError):
        return None


def acquire(out_dir):
    """Take ``out_dir``'s lock, or raise UnpairedError naming the folder and the holder."""
    out_dir = Path(out_dir)
    path = out_dir / NAME
    host = socket.gethostname()
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder is None:  # being written by its holder this instant, or empty from a crash
                time.sleep(0.2)
                holder = _read(path) or {"pid": -1, "host": host, "since": "?"}
            if holder["host"] == host and not pid_alive(holder["pid"]):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # stale: its process is gone
                continue
            raise UnpairedError(
                f"{out_dir} is in use by another run (pid {holder['pid']} on host {holder['host']}, since "
                f"{holder['since']}; lock file {path}). Wait for it to finish, or use another out_dir=; if "
                f"that run is dead on another host, delete {path}")
        with os.fdopen(fd, "w") as f:
            f.write(f"pid={os.getpid()}\nhost={host}\nsince={time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        return path
    raise UnpairedError(f"{out_dir}: could not take the lock {path}; try again")


def release(path):
    holder = _read(path)
    if holder is not None and holder["pid"] == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def hold(out_dir):
    """The lock of ``out_dir`` for the duration of a run (rank 0 only under torchrun); stale
    temporary checkpoint files of killed writers are removed once the lock is held. A folder
    this created and left empty (a run refused at start) is removed again."""
    if os.environ.get("RANK", "0") != "0":
        yield None
        return
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        path = acquire(out_dir)
    except UnpairedError:
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
    try:
        checkpoint.remove_stale_temps(out_dir / "checkpoints")
        yield path
    finally:
        release(path)
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # only when empty
