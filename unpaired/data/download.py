"""Download the public CycleGAN data sets: resumable, verified, safely and atomically extracted.

Each set is a zip at ``{base}/NAME.zip`` holding ``NAME/trainA``, ``trainB``, ``testA`` and
``testB``. The base URL is the Berkeley server unless the environment variable
``UNPAIRED_DATA_MIRROR`` names a mirror; ``url=`` overrides the whole address for one download.

The steps, each safe to interrupt:

1. download into ``root/.NAME.zip.part`` (a rerun, or a retry after a dropped connection,
   resumes with an HTTP Range request);
2. verify the archive (zip structure, every member's CRC, trainA and trainB present);
   a corrupted archive is deleted;
3. check every member name before writing anything (no absolute paths, drive letters,
   ``..``, links or special files), then extract into a hidden temporary folder in ``root``;
4. move the finished folder to ``root/NAME`` with one ``os.replace``, so ``root/NAME`` either
   does not exist or is complete.
"""
from __future__ import annotations

import difflib
import hashlib
import http.client
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeRemainingColumn, TransferSpeedColumn)

from ..store import files
from ..errors import UnpairedError

DEFAULT_BASE_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
MIRROR_ENV = "UNPAIRED_DATA_MIRROR"

DATASETS: dict[str, str] = {
    "horse2zebra": "horses <-> zebras (ImageNet photos)",
    "monet2photo": "Monet paintings <-> landscape photos (Flickr)",
    "summer2winter_yosemite": "Yosemite in summer <-> in winter (Flickr)",
    "apple2orange": "apples <-> oranges (ImageNet photos)",
    "vangogh2photo": "Van Gogh paintings <-> landscape photos",
    "cezanne2photo": "Cezanne paintings <-> landscape photos",
    "ukiyoe2photo": "ukiyo-e prints <-> landscape photos",
    "iphone2dslr_flower": "phone flower photos <-> DSLR shallow depth of field",
    "maps": "satellite images <-> map tiles (Google Maps)",
    "facades": "building facades <-> architectural label maps (CMP Facades)",
}

CONNECT_TIMEOUT_S = 30.0   # for connecting and for each read on the socket
RETRIES = 4                # reconnections after a dropped transfer, each resuming where it stopped
RETRY_DELAY_S = 2.0        # pause before a retry that follows a transfer that received nothing
CHUNK_BYTES = 1 << 16
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    description: str
    url: str
    path: Path
    present: bool


def dataset_url(name: str, url: str | None = None) -> str:
    """The address ``name`` is downloaded from: ``url`` itself, else mirror or default base."""
    if url:
        return url
    base = os.environ.get(MIRROR_ENV, "").strip() or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/{name}.zip"


def is_dataset_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` holds the trainA and trainB folders of an unpaired data set."""
    path = Path(path)
    return (path / "trainA").is_dir() and (path / "trainB").is_dir()


def list_datasets(root: str | os.PathLike = "data") -> list[DatasetEntry]:
    """The known data sets, each with its address and whether it is already under ``root``."""
    root = Path(root)
    return [DatasetEntry(name, description, dataset_url(name), root / name, is_dataset_folder(root / name))
            for name, description in DATASETS.items()]


def download_dataset(name: str, root: str | os.PathLike = "data", url: str | None = None,
                     progress: bool = True, console: Console | None = None) -> Path:
    """Download, verify and extract data set ``name`` into ``root/name``; return that folder.

    ``name`` must be one of DATASETS unless ``url`` is given (then any plain folder name
    will do, for archives in the same layout). If ``root/name`` already holds trainA and
    trainB nothing is downloaded.
    """
    console = console or Console(stderr=True, quiet=not progress, markup=False)
    _check_name(name, url)
    root = Path(root)
    target = root / name
    if is_dataset_folder(target):
        console.print(f"{name} is already present in {target}; nothing to do.")
        return target
    if target.exists():
        raise UnpairedError(f"{target} exists but has no trainA and trainB folders; move or delete it, "
                            f"then run the download again")
    if root.exists() and not root.is_dir():
        raise UnpairedError(f"data root {root} is a file; give a folder with --root")
    root.mkdir(parents=True, exist_ok=True)

    source = dataset_url(name, url)
    part = root / f".{name}.zip.part"
    fetch(source, part, progress=progress, console=console)
    console.print(f"verifying {part.name} ...")
    try:
        prefix = verify_archive(part, name)
        extract_safely(part, target, prefix, progress=progress)
    except UnpairedError as exc:
        part.unlink(missing_ok=True)
        raise UnpairedError(f"{exc} The downloaded file {part} was deleted; run the same command "
                            f"to download it again.") from exc
    part.unlink(missing_ok=True)
    console.print(f"{name} is ready in {target}")
    return target


# --- download ------------------------------------------------------------------------------

class DownloadError(UnpairedError):
    """A download that failed; ``reason`` is its short cause (quoted when several mirrors fail)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 hex digest of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, dest: Path, progress: bool = True, console: Console | None = None,
          retries: int = RETRIES, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Download ``url`` to ``dest``, resuming a partial ``dest`` with an HTTP Range request:
    data sets (here) and weights (``unpaired.evaluation.features.download_weights``).

    A server that ignores the range (answers 200) is downloaded again from the start. A
    dropped connection is retried (resuming) up to ``retries`` times; after that the
    partial file stays in place so the next run resumes it.
    """
    failure = None
    for attempt in range(retries + 1):
        before = dest.stat().st_size if dest.exists() else 0
        try:
            if _fetch_once(url, dest, progress, console, timeout):
                return
            failure = "the connection closed before the whole file arrived"
        except HTTPError as exc:
            if exc.code == 416 and before:  # our partial file is no prefix of theirs: start over
                dest.unlink()
                failure = "the server refused to resume (HTTP 416)"
                continue
            hint = "check the data set name or the URL" if exc.code == 404 else "try again later or use --url"
            raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}; {hint}",
                                f"HTTP {exc.code} {exc.reason}") from exc
        except (URLError, OSError, http.client.HTTPException) as exc:
            failure = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
        received = (dest.stat().st_size if dest.exists() else 0) - before
        if attempt < retries and received <= 0:
            time.sleep(RETRY_DELAY_S * (attempt + 1))
    kept = dest.stat().st_size if dest.exists() else 0
    if not kept:
        dest.unlink(missing_ok=True)  # an empty partial file resumes nothing
    where = (f"{kept:,} bytes are kept in {dest}; run the same command again to resume" if kept else
             "nothing was received (no partial file is kept); run the same command again")
    raise DownloadError(f"download of {url} failed after {retries + 1} tries: {failure}. {where} "
                        f"(or set {MIRROR_ENV} / --url to use another server)", failure or "unknown")


def _fetch_once(url: str, dest: Path, progress: bool, console: Console | None, timeout: float) -> bool:
    """One request; True when the file is complete (or its size is unknown and the stream ended)."""
    have = dest.stat().st_size if dest.exists() else 0
    request = Request(url, headers={"User-Agent": "unpaired-download"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    with urlopen(request, timeout=timeout) as response:
        status = getattr(response, "status", None) or 200
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206:
            if not have or _range_start(response.headers.get("Content-Range")) != have:
                dest.unlink(missing_ok=True)
                raise http.client.HTTPException("the server answered with a byte range that was not asked for")
            mode, done = "ab", have
        else:  # a fresh download, or a server that sent the whole file again
            mode, done = "wb", 0
        total = done + length if length is not None else None
        # never through a link planted at the partial file's name (files.open_append: O_NOFOLLOW)
        with files.open_append(dest, "ab") as out, _TransferBar(progress, console, dest.name, total, done) as advance:
            if mode == "wb":
                out.truncate(0)
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                done += len(chunk)
                advance(len(chunk))
    return total is None or done >= total


def _range_start(content_range: str | None) -> int | None:
    match = re.match(r"\s*bytes\s+(\d+)-", content_range or "")
    return int(match.group(1)) if match else None


class _TransferBar:
    """A rich progress bar with size, speed and time left; a no-op when progress is off."""

    def __init__(self, enabled: bool, console: Console | None, label: str, total: int | None, done: int) -> None:
        self.progress = None
        if enabled:
            self.progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                                     TransferSpeedColumn(), TimeRemainingColumn(), console=console)
            self.task = self.progress.add_task(label.removesuffix(".part").lstrip("."), total=total,
                                               completed=done)

    def __enter__(self):
        if self.progress is None:
            return lambda n: None
        self.progress.start()
        return lambda n: self.progress.advance(self.task, n)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


# --- verification --------------------------------------------------------------------------

def verify_archive(path: Path, name: str) -> str:
    """Check the zip is whole and holds trainA and trainB; return the folder prefix they sit in.

    The prefix is ``NAME/`` in the standard archives, '' when the folders sit at the top,
    or the single top folder's name.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
            names = archive.namelist()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise UnpairedError(f"the downloaded archive {path} is corrupted ({exc}).") from exc
    if broken is not None:
        raise UnpairedError(f"the downloaded archive {path} is corrupted: member {broken!r} fails its "
                            f"CRC check.")
    for prefix in _candidate_prefixes(names, name):
        if _has_folder(names, prefix + "trainA/") and _has_folder(names, prefix + "trainB/"):
            return prefix
    raise UnpairedError(f"the archive {path} has no trainA and trainB folders (expected {name}/trainA, "
                        f"{name}/trainB); is the URL right?")


def _candidate_prefixes(names: list[str], name: str) -> list[str]:
    tops = {n.split("/", 1)[0] for n in names if "/" in n and not n.startswith("__MACOSX")}
    candidates = [f"{name}/", ""]
    if len(tops) == 1:
        candidates.append(f"{tops.pop()}/")
    return candidates


def _has_folder(names: list[str], folder: str) -> bool:
    return any(n.startswith(folder) for n in names)


# --- safe extraction -----------------------------------------------------------------------

def unsafe_member_reason(info: zipfile.ZipInfo) -> str | None:
    """Why extracting this member could write outside its folder (or create a link), or None."""
    name = info.filename
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")):
        return "has an absolute path"
    if re.match(r"^[A-Za-z]:", name):
        return "has a drive letter"
    if ".." in parts:
        return "has a '..' component"
    if "\x00" in name:
        return "has a NUL byte in its name"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "is a symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is a special file (device, pipe or socket)"
    return None


def extract_safely(archive_path: Path, target: Path, prefix: str = "", progress: bool = True) -> None:
    """Extract the archive and move its folder ``prefix`` (e.g. 'NAME/') to ``target``, all or nothing.

    Every member is checked first; one unsafe member refuses the whole archive before
    anything is written. Extraction goes into a hidden temporary folder next to ``target``
    that is then renamed to ``target`` in one step.
    """
    target = Path(target)
    root = target.parent
    with zipfile.ZipFile(archive_path) as archive:
        members = archive.infolist()
        for info in members:
            reason = unsafe_member_reason(info)
            if reason:
                raise UnpairedError(f"refusing to extract {archive_path}: member {info.filename!r} {reason} "
                                    f"and could write outside {target}; the archive may be malicious; "
                                    f"nothing was extracted.")
        _check_space(root, sum(info.file_size for info in members))
        _remove_stale_temporaries(root, target.name)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.extract-", dir=root))
        try:
            _extract_members(archive, members, staging, progress)
            source = staging / prefix.rstrip("/") if prefix else staging
            if not is_dataset_folder(source):
                raise UnpairedError(f"{archive_path} did not yield trainA and trainB under {prefix or 'its top'}")
            os.replace(source, target)
        except OSError as exc:
            raise UnpairedError(f"extracting {archive_path} into {target} failed: {exc}; check free space "
                                f"and permissions, then run the download again") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _extract_members(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], staging: Path,
                     progress: bool) -> None:
    staging_resolved = staging.resolve()
    bar = Progress(TextColumn("extracting"), BarColumn(), MofNCompleteColumn(), transient=True,
                   disable=not progress)
    with bar:
        task = bar.add_task("extract", total=len(members))
        for info in members:
            dest = staging.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
            if not dest.resolve().is_relative_to(staging_resolved):
                raise UnpairedError(f"refusing to extract member {info.filename!r}: it would land outside "
                                    f"{staging}; nothing was extracted")
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(dest, "xb") as out:
                    shutil.copyfileobj(src, out, CHUNK_BYTES)
            bar.advance(task)


def _check_space(root: Path, needed: int) -> None:
    free = shutil.disk_usage(root).free
    if needed > free:
        raise UnpairedError(f"extracting needs {needed / 1e9:.2f} GB but only {free / 1e9:.2f} GB are free "
                            f"in {root}; free some space or choose another --root")


def _remove_stale_temporaries(root: Path, name: str) -> None:
    """Delete temporary folders left behind by an earlier interrupted extraction of ``name``."""
    for stale in root.glob(f".{name}.extract-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def _check_name(name: str, url: str | None) -> None:
    if name in DATASETS:
        return
    if url:
        if not _NAME_OK.match(name):
            raise UnpairedError(f"data set name {name!r} must be a plain folder name (letters, digits, "
                                f"'_', '-', '.'), since it becomes the folder ROOT/{name}")
        return
    close = difflib.get_close_matches(name, list(DATASETS), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise UnpairedError(f"unknown data set {name!r}.{hint} Known data sets: {', '.join(DATASETS)}. "
                        f"For another archive in the same layout pass its address with --url.")
