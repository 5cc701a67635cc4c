"""Videos translated frame by frame through PyAV (``pip install "unpaired[video]"``).

Each frame keeps its own timestamp (a variable frame rate stays variable) and the audio stream
is copied as it is when the output container accepts its codec (else dropped, with a note).
Frames go through the translator as images do: ``--size`` resizes them, large frames are
tiled (``--tile``), and they run in batches of ``translator.batch_size`` (8 on a GPU). The
encoder (H.264, 4:2:0) takes even sides only: an odd side is padded by one pixel (its edge
repeated), and the result says so. The output is written to a temporary name beside it and
renamed when complete, so a translation that is killed or meets a full disk never leaves a
broken video under the final name.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..store import files
from ..errors import UnpairedError

if TYPE_CHECKING:
    from av.video.stream import VideoStream

    from .translate import Translator

VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}
# the container format of each extension (the temporary name has none to guess from) and its codec
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".webm": "webm"}
CODECS = {".webm": "libvpx-vp9"}  # else libx264
MAX_SIDE = 8192  # a declared frame side beyond this (8K is 7680 x 4320) is refused before anything is decoded


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _av() -> ModuleType:
    try:
        import av
    except ImportError:
        raise UnpairedError('video needs PyAV: pip install "unpaired[video]"') from None
    return av


def video_target(source: str | os.PathLike, out: str | os.PathLike | None, direction: str) -> Path:
    """The output file for ``source``: ``--out`` as a video file name, or a folder (one that
    exists, or given with a trailing /) to hold ``<name>.mp4``; no ``--out``: beside the input,
    ``<name>_<direction>.mp4``."""
    source = Path(source)
    if out is None:
        return source.with_name(f"{source.stem}_{direction}.mp4")
    text = str(out)
    out = Path(out)
    if out.is_dir() or text.endswith(("/", "\\")):
        return out / f"{source.stem}.mp4"
    if out.exists() and not out.is_file():
        raise UnpairedError(f"--out {out}: not a folder nor a file (a device or a pipe); give a video file name "
                            f"(e.g. {source.stem}_{direction}.mp4) or a folder")
    if not is_video(out):
        what = f"has the extension {out.suffix!r}" if out.suffix else "has no extension"
        raise UnpairedError(f"--out {out}: {what}; a video is written to a video file "
                            f"({', '.join(sorted(VIDEO_EXTENSIONS))}), e.g. --out {out.with_suffix('.mp4')}, "
                            f"or into a folder: --out {out}/")
    return out


def output_size(width: int, height: int, size: int | None) -> tuple[int, int]:
    """The translated frame's (width, height) for ``--size`` (None: unchanged), as
    ``resize_shorter`` makes it."""
    if not size:
        return width, height
    s = size / min(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def translate_video(translator: Translator, source: str | os.PathLike, target: str | os.PathLike,
                    progress: Callable[[int, int | None], object] | None = None,
                    codec: str | None = None) -> tuple[int, str]:
    """Translate ``source`` into ``target``; ``progress(frames_done, total_or_None)``. Returns
    (frames, note) where note says what happened to the audio (and to an odd frame size)."""
    av = _av()
    source, target = Path(source), Path(target)
    if files.same_file(source, target) or source.resolve() == target.resolve():
        raise UnpairedError(f"--out {target}: would overwrite the input video {source} (the same file); "
                            "choose another --out")
    suffix = target.suffix.lower()
    if suffix not in CONTAINERS:
        raise UnpairedError(f"--out {target}: not a video file name ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    codec = codec or CODECS.get(suffix, "libx264")
    try:
        src = av.open(str(source))
    except Exception as exc:
        raise UnpairedError(f"input {source}: not a readable video ({exc})") from None
    with src:
        if not src.streams.video:
            raise UnpairedError(f"input {source}: holds no video stream")
        vin = src.streams.video[0]
        width, height = vin.codec_context.width, vin.codec_context.height
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise UnpairedError(f"input {source}: the video declares {width} x {height} frames; unpaired translates "
                                f"videos of 1 to {MAX_SIDE:,} pixels a side (the file may be damaged)")
        files.remove_stale_temps_of([target])
        with files.atomic_path(target) as tmp:
            with av.open(str(tmp), "w", format=CONTAINERS[suffix]) as dst:
                done, note = _translate(av, translator, src, vin, dst, codec, width, height, progress)
    return done, note


def _translate(av: ModuleType, translator: Translator, src, vin: VideoStream, dst, codec: str, width: int, height: int,
               progress: Callable[[int, int | None], object] | None) -> tuple[int, str]:
    rate = vin.average_rate or vin.guessed_rate or 25
    out_w, out_h = output_size(width, height, translator.size)
    even_w, even_h = out_w + out_w % 2, out_h + out_h % 2
    vout = dst.add_stream(codec, rate=rate)
    vout.width, vout.height = even_w, even_h
    vout.pix_fmt = "yuv420p"
    time_base = vin.time_base
    if time_base is not None:  # each frame keeps its own timestamp: a variable frame rate stays so
        vout.codec_context.time_base = time_base
        vout.time_base = time_base
    ain = src.streams.audio[0] if src.streams.audio else None
    aout, note = None, "no audio"
    if ain is not None:
        try:
            aout = dst.add_stream_from_template(ain)
            note = "audio copied"
        except Exception as exc:  # the container does not take this codec
            ain, note = None, f"audio dropped ({exc})"
    if (even_w, even_h) != (out_w, out_h):
        note += f"; frames of {out_w} x {out_h} padded to {even_w} x {even_h} (the encoder takes even sides)"
    total = vin.frames or None
    done = 0
    pending: list[tuple[Image.Image, int | None]] = []  # (frame as PIL, pts)
    last_pts: list[int | None] = [None]  # the pts of the last frame written
    step = max(1, round(1 / (rate * time_base))) if time_base is not None else 1

    def flush() -> None:
        nonlocal done
        outs = translator.translate_batch([img for img, _ in pending])
        for out, (_, pts) in zip(outs, pending):
            arr = np.asarray(out.convert("RGB"))
            if arr.shape[:2] != (out_h, out_w):
                raise UnpairedError(f"input video: a frame of {arr.shape[1]} x {arr.shape[0]} among frames of "
                                    f"{width} x {height}; unpaired translates videos whose frames keep one size")
            if (even_w, even_h) != (out_w, out_h):
                arr = np.pad(arr, ((0, even_h - out_h), (0, even_w - out_w), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
            if time_base is not None:
                if pts is None or (last_pts[0] is not None and pts <= last_pts[0]):  # none or out of order:
                    pts = 0 if last_pts[0] is None else last_pts[0] + step  # one frame after the last
                frame.pts, frame.time_base = pts, time_base
                last_pts[0] = pts
            for packet in vout.encode(frame):
                dst.mux(packet)
        done += len(pending)
        pending.clear()
        if progress:
            progress(done, total)

    streams = [vin] + ([ain] if ain is not None else [])
    try:
        for packet in src.demux(*streams):
            if packet.stream.type == "audio":
                if packet.dts is not None:
                    packet.stream = aout
                    dst.mux(packet)
                continue
            for frame in packet.decode():
                pending.append((Image.fromarray(frame.to_ndarray(format="rgb24")), frame.pts))
                if len(pending) >= translator.batch_size:
                    flush()
    except av.error.FFmpegError as exc:
        if files.no_space(exc):
            raise  # writing, not reading: the full-disk message of files.atomic_path
        raise UnpairedError(f"input {src.name}: cannot decode frame {done + len(pending) + 1} ({exc}); "
                            "the video is damaged or truncated") from None
    if pending:
        flush()
    for packet in vout.encode():
        dst.mux(packet)
    return done, note
