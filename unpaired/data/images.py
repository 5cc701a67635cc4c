"""Robust image loading and folder scanning.

Real data sets are messy: grayscale scans, palette GIF-style PNGs with transparency,
RGBA screenshots, CMYK JPEGs from print workflows, 16-bit TIFFs, phone photos that are
stored sideways with an EXIF orientation tag, and the odd empty or half-downloaded file.
Everything here turns such files into plain 8-bit RGB (or L) images, or says exactly
which file is unusable and why.
"""
from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, cast

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UnpairedError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})

# Image.open() reports over-large images through a warning; turning it into an error needs
# the process-wide warnings filter, so threads of this module take turns doing it.
_BOMB_LOCK = threading.Lock()

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


@dataclass(frozen=True)
class ImageInfo:
    """What a successful check learned about a file: its displayed size and stored mode."""

    width: int
    height: int
    mode: str
    format: str | None


@dataclass
class Scan:
    """The result of checking every image file in a folder.

    ``good`` are the files that load, ``bad`` the ones that do not, each with the reason.
    ``info`` holds size and mode of each good file (used by ``unpaired data check``).
    """

    good: list[Path]
    bad: list[tuple[Path, str]]
    folder: Path | None = None
    info: dict[Path, ImageInfo] = field(default_factory=dict)

    def summary(self) -> str:
        """A one-paragraph account of the skipped files ('' when there are none)."""
        return skipped_summary(self.bad, folder=self.folder, total=len(self.good) + len(self.bad))


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a non-hidden file name with one of IMAGE_EXTENSIONS (any letter case)."""
    path = Path(path)
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def require_folder(path: str | os.PathLike, what: str, if_missing: str, if_file: str) -> Path:
    """``path`` when it is a folder; else an UnpairedError naming it, with the advice for a
    missing path or for a file."""
    path = Path(path)
    if not path.exists():
        raise UnpairedError(f"{what} {path} does not exist; {if_missing}")
    if not path.is_dir():
        raise UnpairedError(f"{path} is a file, not a folder; {if_file}")
    return path


def find_images(folder: str | os.PathLike) -> list[Path]:
    """All image files below ``folder``, recursively, in a stable sorted order.

    Extensions are matched case-insensitively (``.JPG``, ``.Png``); hidden files and
    hidden folders (names starting with '.') are skipped, as are other file types and anything
    that is not a regular file (FIFOs, sockets, devices, broken links).
    """
    folder = require_folder(folder, "image folder", "check the path (or run 'unpaired data download NAME' "
                            "to fetch a standard data set)", "give the folder that holds the images")
    found: list[Path] = []
    visited = {os.path.realpath(folder)}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and _first_visit(dirpath, d, visited)]
        # regular files only: a FIFO or device named x.png would block the first read forever
        found.extend(Path(dirpath) / name for name in filenames
                     if is_image_file(name) and os.path.isfile(os.path.join(dirpath, name)))
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def _first_visit(parent: str, name: str, visited: set[str]) -> bool:
    """Follow each real folder once, so symlinked folders work and link loops end."""
    real = os.path.realpath(os.path.join(parent, name))
    if real in visited:
        return False
    visited.add(real)
    return True


def load_image(path: str | os.PathLike, channels: int = 3, max_side: int | None = None) -> Image.Image:
    """Load one image file as an 8-bit PIL image in mode "RGB" (or "L" for ``channels=1``).

    - EXIF orientation is applied, so phone photos come out upright.
    - Transparent images (RGBA, LA, palette or single-colour transparency) are
      composited on a **white** background before dropping the alpha channel.
    - Palette, CMYK, YCbCr and 1-bit images are converted to RGB.
    - 16-bit grayscale (PNG, TIFF) is scaled to 8 bits (65535 -> 255, 32768 -> 128),
      not clipped. 32-bit integer and float images are scaled by their value range:
      data within 0..255 is kept, within 0..65535 treated as 16-bit, float data within
      0..1 multiplied by 255, anything else stretched from its minimum to its maximum.
    - ``max_side``: the caller needs no more than this many pixels per side. Large
      JPEGs are then decoded at a reduced scale (1/2, 1/4 or 1/8, libjpeg's draft mode),
      never so far that either side drops below ``max_side``. The image is not resized
      further here; other formats load at full size.

    Files over ``PIL.Image.MAX_IMAGE_PIXELS`` are refused as possible decompression
    bombs. Every failure raises UnpairedError naming the file and the reason.
    """
    if channels not in (1, 3):
        raise UnpairedError(f"channels={channels!r} is not supported; use 3 (RGB) or 1 (grayscale)")
    if max_side is not None and max_side < 1:
        raise UnpairedError(f"max_side={max_side!r} must be a positive number of pixels (or None)")
    path = Path(path)
    with _ReasonsFor(path):
        im, _ = _decode(path, draft_side=max_side)
        return to_8bit(im, channels)


def inspect_image(path: str | os.PathLike) -> ImageInfo:
    """Fully decode ``path`` (cheaply: big JPEGs at 1/8 scale) and return its size and mode.

    Raises UnpairedError with the reason when the file cannot be used.
    """
    path = Path(path)
    with _ReasonsFor(path):
        im, info = _decode(path, draft_side=1)
        to_8bit(im, 3)
        return info


def check_image(path: str | os.PathLike) -> str | None:
    """The reason ``path`` cannot be used as a training image, or None when it loads.

    The file is fully decoded, so truncated files are caught, not just bad headers.
    """
    try:
        inspect_image(path)
    except UnpairedError as exc:
        return getattr(exc, "reason", str(exc))
    return None


def scan_folder(folder: str | os.PathLike, progress: bool = False, workers: int | None = None) -> Scan:
    """Check every image file below ``folder`` (in parallel threads) and sort good from bad."""
    folder = Path(folder)
    return scan_files(find_images(folder), folder=folder, progress=progress, workers=workers)


def scan_files(paths: Sequence[Path], folder: Path | None = None, progress: bool = False,
               workers: int | None = None) -> Scan:
    """Check the given files in parallel threads; keeps their order in ``good``/``bad``."""
    workers = workers or min(16, (os.cpu_count() or 1) + 4)
    results: list[ImageInfo | str] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = pool.map(_inspect_or_reason, paths)
        if progress and paths:
            outcomes = _with_progress(outcomes, len(paths), f"checking {folder or 'images'}")
        results.extend(outcomes)
    scan = Scan(good=[], bad=[], folder=folder)
    for path, result in zip(paths, results, strict=True):
        if isinstance(result, ImageInfo):
            scan.good.append(path)
            scan.info[path] = result
        else:
            scan.bad.append((path, result))
    return scan


def skipped_summary(bad: Iterable[tuple[Path, str]], folder: Path | None = None,
                    total: int | None = None) -> str:
    """One paragraph naming every skipped file with its reason ('' when none were skipped)."""
    bad = list(bad)
    if not bad:
        return ""
    where = f" in {folder}" if folder is not None else ""
    of_total = f" of {total}" if total is not None else ""
    items = " ".join(f"[{i}] {_short(path, folder)}: {reason}." for i, (path, reason) in enumerate(bad, 1))
    files = "file" if len(bad) == 1 else "files"
    return (f"Skipped {len(bad)}{of_total} image {files}{where} that cannot be loaded: {items} "
            f"Fix or delete them to silence this message; 'unpaired data check' lists them too.")


def usable_problem(scan: Scan, label: str, on_bad_file: str = "skip") -> str | None:
    """Why a training run must refuse this domain, or None when it can train on it.

    The image_folder dataset's rule: a domain needs at least one loadable image, and with
    ``on_bad_file="error"`` (instead of the default "skip") any unloadable file refuses it.
    """
    if on_bad_file not in ("skip", "error"):
        raise UnpairedError(f"on_bad_file={on_bad_file!r} must be 'skip' or 'error'")
    where = scan.folder if scan.folder is not None else label
    total = len(scan.good) + len(scan.bad)
    if total == 0:
        return (f"domain {label} has no image files in {where} (looked for "
                f"{' '.join(sorted(IMAGE_EXTENSIONS))}, in any sub-folder); put the images there "
                f"or point to the right folder")
    if not scan.good:
        return (f"domain {label}: none of the {total} image files in {where} can be loaded; "
                f"fix or replace them (the reasons are listed above)")
    if scan.bad and on_bad_file == "error":
        return (f"domain {label}: {len(scan.bad)} of {total} image files in {where} cannot be loaded and "
                f"on_bad_file is 'error'; fix or delete them, or set data.params.on_bad_file=skip")
    return None


# --- internals -----------------------------------------------------------------------------

class _Unusable(Exception):
    """A reason, found by this module, that a file cannot be used."""


class UnusableImage(UnpairedError):
    """An UnpairedError about one image file: its ``path`` and the ``reason`` it cannot be used."""

    path: Path | None = None
    reason: str | None = None


class _ReasonsFor:
    """Turn any decoding failure inside the block into UnpairedError(path: reason)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> _ReasonsFor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> Literal[False]:
        if exc is None or isinstance(exc, UnpairedError) or not isinstance(exc, Exception):
            return False
        reason = _reason_for(exc)
        error = UnusableImage(f"cannot use image {self.path}: {reason}")
        error.path, error.reason = self.path, reason
        raise error from exc


def _reason_for(exc: Exception) -> str:
    if isinstance(exc, _Unusable):
        return str(exc)
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return (f"refused as a possible decompression bomb ({exc}); if the file is trusted, "
                f"shrink it or raise PIL.Image.MAX_IMAGE_PIXELS")
    if isinstance(exc, PermissionError):
        return "permission denied: the file cannot be read; fix its permissions (chmod +r)"
    if isinstance(exc, FileNotFoundError):
        return "file not found (was it moved or deleted?)"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not an image file"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image: Pillow cannot identify the file format (wrong extension or a non-image file?)"
    message = str(exc) or type(exc).__name__
    if "truncated" in message or isinstance(exc, EOFError):
        return f"truncated or incomplete file ({message}); download or copy it again"
    return f"cannot decode: {message} ({type(exc).__name__})"


def decode_image(data: bytes, channels: int = 3, name: str = "upload") -> Image.Image:
    """:func:`load_image` for a file's bytes in memory (an upload); ``name`` is what errors
    call it. Every failure raises UnpairedError naming it and the reason."""
    if channels not in (1, 3):
        raise UnpairedError(f"channels={channels!r} is not supported; use 3 (RGB) or 1 (grayscale)")
    with _ReasonsFor(Path(name)):
        if not data:
            raise _Unusable("empty file (0 bytes)")
        im, _ = _decode_stream(io.BytesIO(data), draft_side=None)
        return to_8bit(im, channels)


def _decode(path: Path, draft_side: int | None) -> tuple[Image.Image, ImageInfo]:
    """Open, decode and orient one file; the returned image is loaded and file-independent."""
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise _Unusable("empty file (0 bytes); delete it or download it again")
        return _decode_stream(fh, draft_side)


def _decode_stream(fh: IO[bytes], draft_side: int | None) -> tuple[Image.Image, ImageInfo]:
    """:func:`_decode` of an open binary stream."""
    with _BOMB_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = Image.open(fh)
    with im:
        mode, fmt, (width, height) = im.mode, im.format, im.size
        if draft_side and fmt == "JPEG":
            im.draft(None, (draft_side, draft_side))
        im.load()
        oriented = _upright(im)
    if oriented.size != im.size:  # rotated by 90 degrees: report the displayed size
        width, height = height, width
    return oriented, ImageInfo(width=width, height=height, mode=mode, format=fmt)


def _upright(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a damaged EXIF block leaves the pixels as stored."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - broken metadata must not make good pixels unusable
        return im.copy()


def to_8bit(im: Image.Image, channels: int) -> Image.Image:
    """An opened image of any mode (16-bit, palette, RGBA on white, CMYK...) as 8-bit RGB, or
    L for ``channels=1``; also used by translate for PIL images handed in directly."""
    want = "L" if channels == 1 else "RGB"
    if im.mode in _SIXTEEN_BIT_MODES:
        im = _rescale(im.convert("F"), 1 / 257)
    elif im.mode in ("I", "F"):
        im = _rescale_by_range(im)
    elif im.mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    if im.mode != want:
        im = im.convert(want)
    return im


def _rescale_by_range(im: Image.Image) -> Image.Image:
    is_float = im.mode == "F"
    im = im.convert("F")
    low, high = cast(tuple[float, float], im.getextrema())  # one band: (min, max)
    if is_float and low >= 0 and high <= 1:
        return _rescale(im, 255.0)
    if low >= 0 and high <= 255:
        return _rescale(im, 1.0)
    if low >= 0 and high <= 65535:
        return _rescale(im, 1 / 257)
    span = (high - low) or 1.0
    return _rescale(im, 255.0 / span, -low * 255.0 / span)


def _rescale(im: Image.Image, scale: float, offset: float = 0.0) -> Image.Image:
    """Map a mode-F image linearly, then round and clip to 8-bit L."""
    return im.point(lambda v: v * scale + offset + 0.5).convert("L")


def _inspect_or_reason(path: Path) -> ImageInfo | str:
    try:
        return inspect_image(path)
    except UnpairedError as exc:
        return getattr(exc, "reason", str(exc))


def _with_progress(items: Iterable[ImageInfo | str], total: int, description: str) -> Iterator[ImageInfo | str]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    from rich.console import Console

    console = Console(stderr=True, markup=False)  # nothing (not even a blank line) when not on a terminal
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            bar.advance(task)
            yield item


def _short(path: Path, folder: Path | None) -> str:
    if folder is not None:
        try:
            return path.relative_to(folder).as_posix()
        except ValueError:
            pass
    return str(path)
