"""`unpaired translate` on a video: frames, size and frame rate kept (PyAV makes the clip)."""
import pytest
import torch

from unpaired import get_registry
from unpaired.inference.translate import Translator

av = pytest.importorskip("av", reason='the video extra is absent: pip install "unpaired[video]"')


def make_clip(path, frames=7, size=(48, 32), fps=12):
    import numpy as np

    out = av.open(str(path), "w")
    s = out.add_stream("libx264", rate=fps)
    s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
    for i in range(frames):
        arr = np.full((size[1], size[0], 3), i * 30 % 255, dtype=np.uint8)
        for p in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
            out.mux(p)
    for p in s.encode():
        out.mux(p)
    out.close()
    return path


def test_video_round_trip_keeps_frames_size_and_fps(tmp_path):
    from unpaired.inference.video import translate_video

    torch.manual_seed(0)
    g = get_registry().create("generator", "resnet", in_channels=3, out_channels=3, ngf=4, n_blocks=1)
    t = Translator(g, 3, 3, device="cpu", precision="fp32", batch_size=3)
    clip = make_clip(tmp_path / "clip.mp4")
    seen = []
    frames, note = translate_video(t, clip, tmp_path / "out.mp4", progress=lambda n, total: seen.append(n))
    assert frames == 7 and seen[-1] == 7 and note == "no audio"
    with av.open(str(tmp_path / "out.mp4")) as c:
        s = c.streams.video[0]
        decoded = sum(1 for _ in c.decode(s))
        assert decoded == 7 and (s.codec_context.width, s.codec_context.height) == (48, 32)
        assert s.average_rate == 12


def test_cli_translates_a_clip(tmp_path, capsys):
    from unpaired.cli import main
    from unpaired.trainer import train

    from helpers import make_image_root, tiny_recipe

    run = train(tiny_recipe(make_image_root(tmp_path / "d"), tmp_path / "run", "train.max_steps=2")).out_dir
    clip = make_clip(tmp_path / "clip.mp4", frames=4)
    assert main(["translate", str(run), str(clip), "--out", str(tmp_path / "o.mp4"), "--no-progress"]) == 0
    assert "translated 4 frame(s)" in capsys.readouterr().out
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 4


def test_audio_is_copied(tmp_path):
    import numpy as np

    from unpaired.inference.video import translate_video

    out = av.open(str(tmp_path / "a.mp4"), "w")
    v = out.add_stream("libx264", rate=10)
    v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
    a = out.add_stream("aac", rate=16000)
    for i in range(5):
        for p in v.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 40, np.uint8), format="rgb24")):
            out.mux(p)
    for i in range(8):
        f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        f.sample_rate, f.pts = 16000, i * 1024
        for p in a.encode(f):
            out.mux(p)
    for s in (v, a):
        for p in s.encode():
            out.mux(p)
    out.close()
    g = get_registry().create("generator", "resnet", in_channels=3, out_channels=3, ngf=4, n_blocks=1)
    t = Translator(g, 3, 3, device="cpu", precision="fp32")
    assert translate_video(t, tmp_path / "a.mp4", tmp_path / "o.mp4") == (5, "audio copied")
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert sum(1 for _ in c.decode(video=0)) == 5
