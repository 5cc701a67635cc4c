"""Videos translated frame by frame through PyAV (``pip install "unpaired[video]"``).

The output keeps the source's frame rate and size; the audio stream is copied as it is when the
output container accepts its codec (else dropped, with a note). Frames run through the
generator in batches of ``translator.batch_size`` (8 on a GPU).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.tensors import from_uint8, to_uint8
from ..errors import UnpairedError

VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}


def is_video(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _av():
    try:
        import av
    except ImportError:
        raise UnpairedError('video needs PyAV: pip install "unpaired[video]"') from None
    return av


def translate_video(translator, source, target, progress=None, codec="libx264"):
    """Translate ``source`` into ``target``; ``progress(frames_done, total_or_None)``. Returns
    (frames, note) where note says what happened to the audio."""
    av = _av()
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        raise UnpairedError(f"--out {target}: would overwrite the input video")
    try:
        src = av.open(str(source))
    except Exception as exc:
        raise UnpairedError(f"input {source}: not a readable video ({exc})") from None
    if not src.streams.video:
        raise UnpairedError(f"input {source}: holds no video stream")
    vin = src.streams.video[0]
    rate = vin.average_rate or vin.guessed_rate or 25
    target.parent.mkdir(parents=True, exist_ok=True)
    dst = av.open(str(target), "w")
    vout = dst.add_stream(codec, rate=rate)
    vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
    vout.pix_fmt = "yuv420p"
    ain = src.streams.audio[0] if src.streams.audio else None
    aout, note = None, "no audio"
    if ain is not None:
        try:
            aout = dst.add_stream_from_template(ain)
            note = "audio copied"
        except Exception as exc:  # the container does not take this codec
            ain, note = None, f"audio dropped ({exc})"
    total = vin.frames or None
    done, pending = 0, []

    def flush():
        nonlocal done
        x = from_uint8(torch.from_numpy(np.stack(pending)).permute(0, 3, 1, 2))
        if translator.in_channels == 1:
            x = x.mean(1, keepdim=True)
        y = translator.translate_tensor(x)
        if y.shape[1] == 1:
            y = y.expand(-1, 3, -1, -1)
        y = to_uint8(y).permute(0, 2, 3, 1).numpy()
        for arr in y:
            for packet in vout.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr[..., :3]), format="rgb24")):
                dst.mux(packet)
        done += len(pending)
        pending.clear()
        if progress:
            progress(done, total)

    streams = [vin] + ([ain] if ain is not None else [])
    for packet in src.demux(*streams):
        if packet.stream.type == "audio":
            if packet.dts is not None:
                packet.stream = aout
                dst.mux(packet)
            continue
        for frame in packet.decode():
            pending.append(frame.to_ndarray(format="rgb24"))
            if len(pending) >= translator.batch_size:
                flush()
    if pending:
        flush()
    for packet in vout.encode():
        dst.mux(packet)
    dst.close()
    src.close()
    return done, note
