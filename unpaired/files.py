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
* **Errors**: a full disk, a folder that is a file, a path that cannot be written become an
  UnpairedError naming the path and what is intact.
"""
from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from .errors import UnpairedError

TEMP_MARK = ".tmp"  # .NAME.tmpPID


# --------------------------------------------------------------------------- errors
def no_space(exc):
    """True for ENOSPC / EDQUOT, also when a library wraps it (torch's writer: RuntimeError)."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return True
        if "No space left on device" in str(seen) or "Disk quota exceeded" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def interrupted(exc):
    """True when ``exc`` is, or was raised while handling, a KeyboardInterrupt (torch's zip
    writer turns a Ctrl-C in the middle of a write into 'RuntimeError ... unexpected pos')."""
    seen = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def mount_point(path):
    """The mount point of the file system that holds ``path`` (for messages)."""
    p = Path(path).resolve()
    try:
        dev = os.stat(p).st_dev
        while p.parent != p and os.stat(p.parent).st_dev == dev:
            p = p.parent
    except OSError:
        pass
    return p


def final_name(path):
    """The output a temporary ``.NAME.tmpPID`` stands for (``path`` itself for other names)."""
    path = Path(path)
    pid = _temp_owner(path.name)
    return path if pid is None else path.with_name(path.name[1:-len(f"{TEMP_MARK}{pid}")])


def no_space_message(path, needed_bytes=None, intact=None):
    """'no space left on the device of MOUNT while writing PATH: ...; what is intact'."""
    path = final_name(path)
    need = f": about {max(needed_bytes / 2**20, 0.1):.1f} MB needed" if needed_bytes else ""
    if intact is None:
        intact = (f"the earlier {path.name} is intact" if path.is_file()
                  else f"nothing was written at {path}")
    return f"no space left on the device of {mount_point(path.parent)} while writing {path}{need}; {intact}"


def write_error(path, exc):
    """An UnpairedError for an OSError met while writing ``path``."""
    path = final_name(path)
    reason = exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, (NotADirectoryError, FileExistsError)) or exc.errno in (errno.ENOTDIR, errno.EEXIST):
        reason = f"{reason}: a folder on the way is a file"
    return UnpairedError(f"cannot write {path} ({reason}); choose another output path")


def check_folder_path(path, key):
    """An UnpairedError naming ``key`` when ``path`` exists and is not a folder (a file,
    /dev/null); the path otherwise (it may not exist yet)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        kind = "a file" if path.is_file() else "not a folder (a device, a pipe or a socket)"
        raise UnpairedError(f"{key}: {path} is {kind}; give a folder (it is created when missing)")
    return path


def ensure_folder(path, key):
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
def temp_name(path):
    """The temporary name of ``path`` for this process: ``.NAME.tmpPID`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")


def _fsync_folder(folder):
    try:  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_path(path, full_disk=None):
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
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
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


@contextlib.contextmanager
def atomic_open(path, mode="wb", full_disk=None, **kwargs):
    """``open(path, mode)`` written atomically (see :func:`atomic_path`)."""
    with atomic_path(path, full_disk) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f


def write_bytes(path, data, full_disk=None):
    with atomic_open(path, "wb", full_disk) as f:
        f.write(data)
    return Path(path)


def write_text(path, text, full_disk=None):
    return write_bytes(path, text.encode("utf-8"), full_disk)


def save_image(img, path, format="PNG"):
    """A PIL image saved atomically (parent folders created)."""
    path = Path(path)
    with atomic_open(path) as f:
        img.save(f, format=format)
    return path


def _temp_owner(name):
    """The pid in a temporary's name ``.NAME.tmpPID`` (None for other names)."""
    if not name.startswith("."):
        return None
    pid = name.rpartition(TEMP_MARK)[2]
    return int(pid) if pid.isdigit() and TEMP_MARK in name else None


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


def remove_stale_temps(folder, names=None):
    """Delete the ``.NAME.tmpPID`` files in ``folder`` left by writers that were killed (their
    pid is gone); ``names``: only the temporaries of these output names. Returns the paths
    removed."""
    removed = []
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


def remove_stale_temps_of(targets):
    """:func:`remove_stale_temps` for the temporaries of these output files only."""
    by_folder = {}
    for t in targets:
        t = Path(t)
        by_folder.setdefault(t.parent, set()).add(t.name)
    return [p for folder, names in by_folder.items() for p in remove_stale_temps(folder, names)]


# --------------------------------------------------------------------------- identity
def identity(path):
    """(device, inode) of the file ``path`` names (links followed), or None when absent."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def same_file(a, b):
    """True when ``a`` and ``b`` are one file (hard links, symbolic links, other spellings)."""
    ia = identity(a)
    return ia is not None and ia == identity(b)


class Protected:
    """Files an output must never replace (the inputs), known by identity:
    ``protected.check(target, key)`` raises an UnpairedError naming both."""

    def __init__(self, paths=()):
        self.files = {}
        for p in paths:
            self.add(p)

    def add(self, path):
        ident = identity(path)
        if ident is not None:
            self.files.setdefault(ident, Path(path))
        return self

    def holder(self, target):
        """The protected file ``target`` is (by identity), or None."""
        ident = identity(target)
        return None if ident is None else self.files.get(ident)

    def check(self, target, key, hint="choose another output"):
        found = self.holder(target)
        if found is not None:
            same = "" if os.path.abspath(found) == os.path.abspath(target) else \
                " (the same file: a hard or symbolic link to it)"
            raise UnpairedError(f"{key}: writing {target} would overwrite the input {found}{same}; {hint}")
        return target
