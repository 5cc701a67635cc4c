"""Writing the user's disk safely: every output unpaired writes goes through here.

* **Atomic writes** (:func:`atomic_path`, :func:`atomic_open`, :func:`save_image`,
  :func:`write_text`): the output is written to a temporary name beside it
  (``.NAME.tmpPID``), flushed to the disk and renamed over the final name only when complete,
  so a writer that is killed, or that meets a full disk, never leaves a half-written file
  under the final name (nor writes through a symbolic or hard link there). A temporary is
  removed when its write fails; those of killed writers are removed at the next start
  (:func:`remove_stale_temps`).
* **File identity** (:func:`identity`, :func:`same_file`, :class:`Protected`): outputs are
  compared with the inputs by device and inode, not by path, so a hard link, a symbolic link
  or another spelling of an input is recognised as that input.
* **No writes through links** (:func:`open_fd`, :func:`open_append`, :func:`refuse_link`):
  a file written in place (the run's lock, metrics.csv, TensorBoard's events, a partial
  download) is opened with ``O_NOFOLLOW`` and must be a regular file with one name, so a
  symbolic link planted at its name, or a hard link to a file elsewhere, is refused naming
  the link and where it points. A whole-file output (above) replaces a link at its name, never
  its target, and its temporary is created with ``O_EXCL | O_NOFOLLOW``.
* **Errors**: a full disk, a folder that is a file, a path that cannot be written become an
  UnpairedError naming the path and what is intact.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import UnpairedError

if TYPE_CHECKING:
    from PIL import Image

TEMP_MARK = ".tmp"  # .NAME.tmpPID
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO is refused at once, not waited on
LINK_HINT = "remove the link (unpaired writes only files of its own)"


# --------------------------------------------------------------------------- errors
def no_space(exc: BaseException) -> bool:
    """True for ENOSPC / EDQUOT, also when a library wraps it (torch's writer: RuntimeError)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return True
        if "No space left on device" in str(seen) or "Disk quota exceeded" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def interrupted(exc: BaseException) -> bool:
    """True when ``exc`` is, or was raised while handling, a KeyboardInterrupt (torch's zip
    writer turns a Ctrl-C in the middle of a write into 'RuntimeError ... unexpected pos')."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def mount_point(path: str | os.PathLike) -> Path:
    """The mount point of the file system that holds ``path`` (for messages)."""
    p = Path(path).resolve()
    try:
        dev = os.stat(p).st_dev
        while p.parent != p and os.stat(p.parent).st_dev == dev:
            p = p.parent
    except OSError:
        pass
    return p


def final_name(path: str | os.PathLike) -> Path:
    """The output a temporary ``.NAME.tmpPID`` stands for (``path`` itself for other names)."""
    path = Path(path)
    pid = _temp_owner(path.name)
    return path if pid is None else path.with_name(path.name[1:-len(f"{TEMP_MARK}{pid}")])


def no_space_message(path: str | os.PathLike, needed_bytes: float | None = None, intact: str | None = None) -> str:
    """'no space left on the device of MOUNT while writing PATH: ...; what is intact'."""
    path = final_name(path)
    need = f": about {max(needed_bytes / 2**20, 0.1):.1f} MB needed" if needed_bytes else ""
    if intact is None:
        intact = (f"the earlier {path.name} is intact" if path.is_file()
                  else f"nothing was written at {path}")
    return f"no space left on the device of {mount_point(path.parent)} while writing {path}{need}; {intact}"


def write_error(path: str | os.PathLike, exc: OSError) -> UnpairedError:
    """An UnpairedError for an OSError met while writing ``path``."""
    path = final_name(path)
    reason = exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, (NotADirectoryError, FileExistsError)) or exc.errno in (errno.ENOTDIR, errno.EEXIST):
        reason = f"{reason}: a folder on the way is a file"
    return UnpairedError(f"cannot write {path} ({reason}); choose another output path")


def check_folder_path(path: str | os.PathLike, key: str) -> Path:
    """An UnpairedError naming ``key`` when ``path`` exists and is not a folder (a file,
    /dev/null); the path otherwise (it may not exist yet)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        kind = "a file" if path.is_file() else "not a folder (a device, a pipe or a socket)"
        raise UnpairedError(f"{key}: {path} is {kind}; give a folder (it is created when missing)")
    return path


def ensure_folder(path: str | os.PathLike, key: str) -> Path:
    """Create the folder ``path`` (and its parents) for outputs; an UnpairedError naming
    ``key`` (the flag or recipe key) when it is a file, a device, or cannot be created."""
    path = check_folder_path(path, key)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UnpairedError(f"{key}: {path} cannot be created: a part of it is a file; give another folder") from None
    except OSError as exc:
        raise UnpairedError(f"{key}: the folder {path} cannot be created ({exc.strerror or exc}); "
                            "give a folder you can write") from None
    return path


# --------------------------------------------------------------------------- atomic writes
def temp_name(path: str | os.PathLike) -> Path:
    """The temporary name of ``path`` for this process: ``.NAME.tmpPID`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")


def _fsync_folder(folder: str | os.PathLike) -> None:
    try:  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, full_disk: Callable[[], str] | None = None) -> Iterator[Path]:
    """Within: a temporary path beside ``path`` to write (by name: for writers that take a
    path; the parent folders are created); on success it is flushed to the disk and renamed
    to ``path``. On any failure the temporary is removed and ``path`` is as it was. A full disk raises an UnpairedError
    (``full_disk()``: its message, else one naming what is intact), another OSError one
    naming the path; a Ctrl-C stays a KeyboardInterrupt, whatever the writer made of it."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        _claim(tmp)
        yield tmp
        fd = os.open(tmp, os.O_RDONLY | NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if interrupted(exc) and not isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        if isinstance(exc, Exception) and no_space(exc):
            raise UnpairedError(full_disk() if full_disk else no_space_message(path)) from None
        if isinstance(exc, OSError) and not isinstance(exc, UnpairedError):
            raise write_error(path, exc) from None
        raise
    _fsync_folder(path.parent)


def _claim(tmp: Path) -> None:
    """Create the temporary ``tmp`` as a new empty file of this process (``O_EXCL |
    O_NOFOLLOW``: never through a link planted at its name). What bore the name before, a link
    or the temporary of an earlier process with this pid, is removed first (the name holds
    this process's pid: no live writer of another process uses it)."""
    for _ in range(3):
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | CLOEXEC, 0o666)
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            continue
        os.close(fd)
        return
    raise OSError(errno.EEXIST, "its temporary name keeps reappearing", str(tmp))


def _no_follow_opener(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open` that never follows a symbolic link at ``path``."""
    return os.open(path, flags | NOFOLLOW | CLOEXEC, 0o666)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", full_disk: Callable[[], str] | None = None,
                **kwargs: Any) -> Iterator[IO[Any]]:
    """``open(path, mode)`` written atomically (see :func:`atomic_path`)."""
    with atomic_path(path, full_disk) as tmp:
        with open(tmp, mode, opener=_no_follow_opener, **kwargs) as f:
            yield f


def write_bytes(path: str | os.PathLike, data: bytes, full_disk: Callable[[], str] | None = None) -> Path:
    with atomic_open(path, "wb", full_disk) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, full_disk: Callable[[], str] | None = None) -> Path:
    return write_bytes(path, text.encode("utf-8"), full_disk)


def save_image(img: Image.Image, path: str | os.PathLike, format: str = "PNG") -> Path:
    """A PIL image saved atomically (parent folders created)."""
    path = Path(path)
    with atomic_open(path) as f:
        img.save(f, format=format)
    return path


def _temp_owner(name: str) -> int | None:
    """The pid in a temporary's name ``.NAME.tmpPID`` (None for other names)."""
    if not name.startswith("."):
        return None
    pid = name.rpartition(TEMP_MARK)[2]
    return int(pid) if pid.isdigit() and TEMP_MARK in name else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except (OverflowError, ValueError):
        return False
    return True


def remove_stale_temps(folder: str | os.PathLike, names: Iterable[str] | None = None) -> list[Path]:
    """Delete the ``.NAME.tmpPID`` files in ``folder`` left by writers that were killed (their
    pid is gone); ``names``: only the temporaries of these output names. Returns the paths
    removed."""
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    wanted = None if names is None else {f".{n}{TEMP_MARK}" for n in names}
    for tmp in folder.glob(f".*{TEMP_MARK}*"):
        pid = _temp_owner(tmp.name)
        if pid is None or pid == os.getpid() or pid_alive(pid):
            continue
        if wanted is not None and tmp.name[: -len(str(pid))] not in wanted:
            continue
        try:
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
    return removed


def remove_stale_temps_of(targets: Iterable[str | os.PathLike]) -> list[Path]:
    """:func:`remove_stale_temps` for the temporaries of these output files only."""
    by_folder: dict[Path, set[str]] = {}
    for t in targets:
        t = Path(t)
        by_folder.setdefault(t.parent, set()).add(t.name)
    return [p for folder, names in by_folder.items() for p in remove_stale_temps(folder, names)]


# --------------------------------------------------------------------------- no writes through links
def link_target(path: str | os.PathLike[str]) -> str:
    """Where the symbolic link ``path`` points, as written in it ("?" when unreadable)."""
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def link_message(path: str | os.PathLike[str], hint: str = LINK_HINT) -> str:
    return (f"{path} is a symbolic link (to {link_target(path)}): unpaired does not write through a link "
            f"it did not make; {hint}")


def refuse_link(path: str | os.PathLike[str], hint: str = LINK_HINT) -> Path:
    """``path`` when it is no symbolic link (it may not exist); else an UnpairedError naming the
    link and where it points."""
    if os.path.islink(path):
        raise UnpairedError(link_message(path, hint))
    return Path(path)


def open_fd(path: str | os.PathLike[str], flags: int, hint: str = LINK_HINT, single: bool = True) -> int:
    """``os.open(path, flags)`` for writing in place, never through a link: ``O_NOFOLLOW``, so
    a symbolic link at ``path`` (a dangling one included) is an UnpairedError naming it and its
    target; the file opened must be a regular file (a FIFO or a device is refused, without
    waiting for a reader) and, with ``single``, have no other name (a hard link to a file
    elsewhere is refused before a byte of it changes). Other OSErrors are raised as they are.
    Returns the descriptor (close-on-exec)."""
    refuse_link(path, hint)
    try:
        fd = os.open(path, flags | NOFOLLOW | CLOEXEC | NONBLOCK | getattr(os, "O_NOCTTY", 0), 0o666)
    except OSError as exc:
        if os.path.islink(path):
            raise UnpairedError(link_message(path, hint)) from None
        if exc.errno == errno.ENXIO:  # a FIFO with no reader
            raise UnpairedError(f"{path} is not a regular file (a FIFO, a device or a socket); {hint}") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnpairedError(f"{path} is not a regular file (a FIFO, a device or a socket); {hint}")
        if single and st.st_nlink > 1:
            raise UnpairedError(f"{path} is a hard link: the same file has {st.st_nlink - 1} other name(s), which "
                                f"writing here would change too; {hint}")
        if NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_append(path: str | os.PathLike[str], mode: str = "a", hint: str = LINK_HINT, **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` to append to a log (created when missing; ``mode`` "a" or "ab"),
    through :func:`open_fd`: never through a symbolic link, only into a regular file with one
    name. An OSError becomes an UnpairedError naming the path."""
    if mode not in ("a", "ab"):
        raise ValueError(f"open_append: mode {mode!r} is not 'a' or 'ab'")
    try:
        fd = open_fd(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, hint)
    except OSError as exc:
        if no_space(exc):
            raise UnpairedError(no_space_message(path)) from None
        raise write_error(path, exc) from None
    try:
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


# --------------------------------------------------------------------------- identity
def identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` names (links followed), or None when absent."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` are one file (hard links, symbolic links, other spellings)."""
    ia = identity(a)
    return ia is not None and ia == identity(b)


class Protected:
    """Files an output must never replace (the inputs), known by identity:
    ``protected.check(target, key)`` raises an UnpairedError naming both."""

    def __init__(self, paths: Iterable[str | os.PathLike] = ()) -> None:
        self.files: dict[tuple[int, int], Path] = {}
        for p in paths:
            self.add(p)

    def add(self, path: str | os.PathLike) -> Protected:
        ident = identity(path)
        if ident is not None:
            self.files.setdefault(ident, Path(path))
        return self

    def holder(self, target: str | os.PathLike) -> Path | None:
        """The protected file ``target`` is (by identity), or None."""
        ident = identity(target)
        return None if ident is None else self.files.get(ident)

    def check(self, target: str | os.PathLike, key: str, hint: str = "choose another output") -> str | os.PathLike:
        found = self.holder(target)
        if found is not None:
            same = "" if os.path.abspath(found) == os.path.abspath(target) else \
                " (the same file: a hard or symbolic link to it)"
            raise UnpairedError(f"{key}: writing {target} would overwrite the input {found}{same}; {hint}")
        return target
