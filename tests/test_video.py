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


@pytest.mark.slow
def test_cli_translates_a_clip(tmp_path, capsys):
    from unpaired.cli import main
    from unpaired.engine.trainer import train

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


# --------------------------------------------------------------------------- issue 18
def make_odd_clip(path, size=(33, 17), frames=3, pts=None, time_base=None):
    """A lossless clip (FFV1 in Matroska takes odd sizes); ``pts`` in ``time_base`` units."""
    import fractions

    import numpy as np

    out = av.open(str(path), "w")
    s = out.add_stream("ffv1", rate=10)
    s.width, s.height, s.pix_fmt = size[0], size[1], "yuv444p"
    if time_base is not None:
        s.codec_context.time_base = s.time_base = fractions.Fraction(*time_base)
    for i in range(frames):
        f = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 40 * i, np.uint8), format="rgb24")
        if pts is not None:
            f.pts, f.time_base = pts[i], fractions.Fraction(*time_base)
        for p in s.encode(f):
            out.mux(p)
    for p in s.encode():
        out.mux(p)
    out.close()
    return path


def tiny_translator(**kw):
    torch.manual_seed(0)
    g = get_registry().create("generator", "resnet", in_channels=3, out_channels=3, ngf=4, n_blocks=1)
    return Translator(g, 3, 3, device="cpu", precision="fp32", **kw)


def test_odd_sizes_are_padded_to_even_for_the_encoder(tmp_path):
    from unpaired.inference.video import translate_video

    frames, note = translate_video(tiny_translator(), make_odd_clip(tmp_path / "odd.mkv"), tmp_path / "o.mp4")
    assert frames == 3 and "padded to 34 x 18" in note
    with av.open(str(tmp_path / "o.mp4")) as c:
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height) == (34, 18)
        assert sum(1 for _ in c.decode(s)) == 3


def test_variable_frame_rate_keeps_each_frames_time(tmp_path):
    from unpaired.inference.video import translate_video

    pts = [0, 50, 300, 320, 900]  # milliseconds: not a constant rate
    clip = make_odd_clip(tmp_path / "vfr.mkv", size=(32, 24), frames=5, pts=pts, time_base=(1, 1000))
    translate_video(tiny_translator(), clip, tmp_path / "o.mp4")
    with av.open(str(tmp_path / "o.mp4")) as c:
        times = [round(float(f.time), 3) for f in c.decode(video=0)]
    assert times == [p / 1000 for p in pts]


def test_size_and_tile_apply_to_frames(tmp_path, monkeypatch):
    from unpaired.inference import tiling
    from unpaired.inference.video import translate_video

    clip = make_clip(tmp_path / "clip.mp4", frames=3, size=(64, 48))
    translate_video(tiny_translator(size=24), clip, tmp_path / "small.mp4")
    with av.open(str(tmp_path / "small.mp4")) as c:
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (32, 24)
    calls = []
    real = tiling.translate_tiled
    monkeypatch.setattr(tiling, "translate_tiled", lambda t, img, tile: calls.append(tile) or real(t, img, tile))
    translate_video(tiny_translator(tile=32), clip, tmp_path / "tiled.mp4")
    assert calls == [32, 32, 32]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from unpaired.engine.trainer import train

    from helpers import make_image_root, tiny_recipe

    tmp = tmp_path_factory.mktemp("video_run")
    return train(tiny_recipe(make_image_root(tmp / "d"), tmp / "run", "train.max_steps=1")).out_dir


def cli(capsys, *args):
    from unpaired.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_out_as_a_folder_or_a_wrong_name(trained_run, tmp_path, capsys):
    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    folder = tmp_path / "videos"
    folder.mkdir()
    code, out, err = cli(capsys, "translate", trained_run, clip, "--out", folder, "--no-progress")
    assert code == 0, err
    assert (folder / "clip.mp4").is_file() and str(folder / "clip.mp4") in out
    for bad, words in (("x.png", ["'.png'", ".mp4"]), ("noext", ["no extension", "noext.mp4", "noext/"])):
        code, _, err = cli(capsys, "translate", trained_run, clip, "--out", tmp_path / bad, "--no-progress")
        assert code == 2 and all(w in err for w in words) and "Traceback" not in err, err
    code, _, err = cli(capsys, "translate", trained_run, clip, "--out", tmp_path / "o.mp4", "--grid")
    assert code == 2 and "--grid" in err, err


def test_a_hard_link_to_the_input_video_is_refused(trained_run, tmp_path, capsys):
    import os

    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    os.link(clip, tmp_path / "hl.mp4")
    before = clip.read_bytes()
    code, _, err = cli(capsys, "translate", trained_run, clip, "--out", tmp_path / "hl.mp4", "--no-progress")
    assert code == 2 and "overwrite" in err, err
    assert clip.read_bytes() == before


def test_an_absurd_declared_size_gets_a_message(trained_run, tmp_path, capsys):
    clip = make_odd_clip(tmp_path / "c.mkv", size=(256, 272), frames=1)
    data = clip.read_bytes()  # Matroska's PixelWidth (0xB0) and PixelHeight (0xBA), 2 bytes each
    assert data.count(bytes([0xB0, 0x82, 0x01, 0x00])) == 1 and data.count(bytes([0xBA, 0x82, 0x01, 0x10])) == 1
    data = data.replace(bytes([0xB0, 0x82, 0x01, 0x00]), bytes([0xB0, 0x82, 0x27, 0x10]))
    clip.write_bytes(data.replace(bytes([0xBA, 0x82, 0x01, 0x10]), bytes([0xBA, 0x82, 0x27, 0x10])))  # 10000 x 10000
    code, _, err = cli(capsys, "translate", trained_run, clip, "--out", tmp_path / "o.mp4", "--no-progress")
    assert code == 2 and "10000 x 10000" in err and "Traceback" not in err, err
    assert not (tmp_path / "o.mp4").exists()
