"""One run per folder, and only a folder of ours.

**The lock**: ``OUT_DIR/.lock``, held with ``fcntl.flock`` for the run's life. The kernel
releases it when its holder ends in any way (kill -9, a power cut: the file then stays, with
no holder), so there is no stale-lock takeover step that two starting runs could both win.
The pid and host written into it after the flock are for the message a second run gets. The
holder deletes the file at the end while it still holds the lock; a run that takes the lock
checks that the file it locked is still the one at ``.lock`` (else it takes the new one).
Under torchrun only rank 0 takes it (the other ranks write nothing but their own state files).

**The marker**: ``OUT_DIR/.unpaired-run``, written when a run takes a folder. A run writes
only into a new or empty folder or into one that holds a run of ours (the marker; or, from
versions before the marker, ``checkpoints/latest.pt`` or ``config.yaml`` with
``metrics.csv``); any other folder holding files is refused, naming the files it would
overwrite, so ``out_dir=.`` in a project folder never replaces the user's ``config.yaml``.

**No links planted in it**: the lock, the marker, metrics.csv and the folders checkpoints/,
samples/ and tensorboard/ of a run folder are never symbolic links: a run refuses to start in
a folder where one is, naming the link and its target (a run would write, append or delete
through it; a linked marker would make any folder look like ours). The folder itself may be a
link (``out_dir`` on another disk). The lock is opened with ``O_NOFOLLOW`` and must be a
regular file with one name (``unpaired.store.files.open_fd``): it is truncated and written.
"""
import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from ..store import files
from ..errors import UnpairedError
from ..store.files import pid_alive  # noqa: F401  (its home before the files module)

NAME = ".lock"
MARKER = ".unpaired-run"
OURS = {NAME, MARKER}
# what a run writes at the top of its folder: named when a foreign folder holds them
OUTPUTS = ("config.yaml", "metrics.csv", "figure.png", "checkpoints", "samples", "tensorboard", "eval",
           "translated_a2b", "translated_b2a")
# what a run writes into in place (or deletes in): never a symbolic link. Whole files written
# atomically (config.yaml, figure.png, report.html) replace a link at their name, not its target.
NO_LINKS = (NAME, MARKER, "metrics.csv", "checkpoints", "samples", "tensorboard")
LINK_HINT = ("remove the link: a run writes only into files and folders of its own (the run folder itself "
             "may be a link, e.g. out_dir on another disk)")


def _read(path_or_fd: int | str | os.PathLike) -> dict[str, int | str]:
    """The holder's pid, host and start time from the lock's text ("?" for what is unreadable:
    a lock being written this instant, or one a power cut left empty)."""
    try:
        if isinstance(path_or_fd, int):
            text = os.pread(path_or_fd, 4096, 0).decode("utf-8", "replace")
        else:
            text = Path(path_or_fd).read_text(errors="replace")
        fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    except (OSError, ValueError):
        fields = {}
    pid = fields.get("pid", "?")
    return {"pid": int(pid) if pid.strip().isdigit() else "?", "host": fields.get("host", "?"),
            "since": fields.get("since", "?")}


class Lock:
    """A held lock: the open file (its flock) and its path. The descriptor is a plain int, so
    the lock lasts until :func:`release` or the end of the process, not until garbage collection."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"Lock({str(self.path)!r})"


def acquire(out_dir: str | os.PathLike) -> Lock:
    """Take ``out_dir``'s lock (a :class:`Lock`), or raise UnpairedError naming the folder and
    the holder."""
    import fcntl

    out_dir = Path(out_dir)
    path = out_dir / NAME
    for _ in range(20):
        try:  # never through a link planted at .lock, never into a file with another name
            fd = files.open_fd(path, os.O_RDWR | os.O_CREAT, hint=LINK_HINT)
        except OSError as exc:
            raise UnpairedError(f"{out_dir}: cannot create the lock file {path} ({exc.strerror or exc}); "
                                "give an out_dir you can write") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise UnpairedError(
                f"{out_dir} is in use by another run (pid {holder['pid']} on host {holder['host']}, since "
                f"{holder['since']}; lock file {path}). Wait for it to finish, or use another out_dir=") from None
        except OSError as exc:
            os.close(fd)
            raise UnpairedError(f"{out_dir}: cannot lock {path} ({exc.strerror or exc})") from None
        # the holder we waited on may have deleted the file we opened: lock the one at the path
        if files.identity(path) != _ident(fd):
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        text = f"pid={os.getpid()}\nhost={socket.gethostname()}\nsince={time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        os.pwrite(fd, text.encode(), 0)
        return Lock(path, fd)
    raise UnpairedError(f"{out_dir}: could not take the lock {path}; try again")


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def release(lock: Lock | None) -> None:
    """Delete the lock file (while still holding it) and let go of it."""
    if not isinstance(lock, Lock):
        return
    with contextlib.suppress(OSError):
        if files.identity(lock.path) == _ident(lock.fd):
            lock.path.unlink()
    with contextlib.suppress(OSError):
        os.close(lock.fd)


# --------------------------------------------------------------------------- the folder is ours
RECIPE_KEYS = {"name", "out_dir", "generator", "discriminator", "data", "train"}


def legacy_run(out_dir: str | os.PathLike) -> bool:
    """True for a run folder written before the marker existed: one with a checkpoint, or with
    the config.yaml (a recipe of ours) and the metrics.csv (a log by step) that runs write."""
    out_dir = Path(out_dir)
    if (out_dir / "checkpoints" / "latest.pt").is_file():
        return True
    config, metrics = out_dir / "config.yaml", out_dir / "metrics.csv"
    if not (config.is_file() and metrics.is_file()):
        return False
    try:
        import yaml

        with open(config, encoding="utf-8") as f:
            recipe = yaml.safe_load(f.read(1_000_000))
        with open(metrics, encoding="utf-8") as f:
            header = f.readline()
    except Exception:  # not YAML, not text: not ours
        return False
    return isinstance(recipe, dict) and RECIPE_KEYS <= set(recipe) and header.startswith("step,")


def check_links(out_dir: str | os.PathLike) -> Path:
    """Refuse a run folder where what a run writes into (:data:`NO_LINKS`) is a symbolic link,
    naming the link and where it points."""
    out_dir = Path(out_dir)
    for name in NO_LINKS:
        files.refuse_link(out_dir / name, LINK_HINT)  # its message names the path: no key needed
    return out_dir


def marked(out_dir: str | os.PathLike) -> bool:
    """True when ``out_dir`` holds our marker (a regular file, not a link to one)."""
    marker = Path(out_dir) / MARKER
    return marker.is_file() and not marker.is_symlink()


def check_folder(out_dir: str | os.PathLike, key: str = "out_dir") -> None:
    """Refuse a folder that holds files and is not a run of ours (no marker), naming the files
    a run would overwrite there."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir() or marked(out_dir) or legacy_run(out_dir):
        return
    try:
        entries = sorted(p.name for p in out_dir.iterdir() if p.name not in OURS)
    except OSError as exc:
        raise UnpairedError(f"{key}: the folder {out_dir} cannot be read ({exc.strerror or exc}); "
                            "give a folder you can write") from None
    if not entries:
        return
    clash = [n for n in OUTPUTS if n in entries]
    shown = clash or entries[:5]
    what = (f"a run would overwrite its {', '.join(shown)}" if clash
            else f"it holds {len(entries)} file(s) of yours ({', '.join(shown)}{', ...' if len(entries) > 5 else ''})")
    raise UnpairedError(f"{key}: {out_dir} is a folder that holds no run of unpaired (no {MARKER} marker) and is not "
                        f"empty: {what}. Give a new or empty folder, e.g. out_dir=runs/NAME")


def mark(out_dir: str | os.PathLike) -> Path:
    """Write the marker that says the folder holds a run of ours."""
    marker = Path(out_dir) / MARKER
    if not marked(out_dir):  # a link there is replaced, its target untouched
        files.write_text(marker, "This folder holds a run of unpaired: unpaired writes only into new or empty "
                                 "folders and into folders that hold this marker.\n")
    return marker


@contextlib.contextmanager
def hold(out_dir: str | os.PathLike, key: str = "out_dir") -> Iterator[Lock | None]:
    """The lock of ``out_dir`` for the duration of a run (rank 0 only under torchrun), after
    checking that the folder is new, empty or ours and that no link is planted in it
    (:func:`check_links`); the marker is written once the lock is held,
    and stale temporary files of killed writers are removed. A folder this created and that the
    run left with nothing of its own (a run refused at start) is removed again."""
    if os.environ.get("RANK", "0") != "0":
        yield None
        return
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    check_links(out_dir)
    check_folder(out_dir, key)
    files.ensure_folder(out_dir, key)
    try:
        lock = acquire(out_dir)
    except UnpairedError:
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
    try:
        marked = not (out_dir / MARKER).exists()
        mark(out_dir)
        for folder in (out_dir, out_dir / "checkpoints", out_dir / "samples"):
            files.remove_stale_temps(folder)
        yield lock
    finally:
        if marked and {p.name for p in out_dir.iterdir()} <= OURS:  # the run wrote nothing
            with contextlib.suppress(OSError):
                (out_dir / MARKER).unlink()
        release(lock)
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # only when empty
