"""Faults and hostile input: a checkpoint never runs code, NaN never overwrites a good
checkpoint, one run per folder, honest messages after a double signal, no hang on a FIFO,
a clean message on a full disk, exit 2 naming the key for bad values, and kill -9 resumes to
the same weights."""
import errno
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

import unpaired
from unpaired.store import checkpoint
from unpaired.cli import main
from unpaired.errors import UnpairedError
from unpaired.engine.trainer import train

from helpers import RECIPE, REPO, TINY


def run_main(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def trained(run_copy):
    """A healthy 2-step run in tmp_path/run (a copy): its latest.pt."""
    return run_copy / "checkpoints" / "latest.pt"


# ----------------------------------------------------------------------------- 1. no code from checkpoints
MARKER_PLUGIN = '''
from pathlib import Path
from unpaired import hookimpl
from unpaired.plugins.resnet import resnet

Path({marker!r}).write_text("imported")

def reliability_marker_net(in_channels, out_channels, ngf=4, n_blocks=1):
    return resnet(in_channels, out_channels, ngf=ngf, n_blocks=n_blocks)

@hookimpl
def register_generators(register):
    register("reliability_marker_net", reliability_marker_net)
'''


def test_a_checkpoint_never_imports_its_plugin_files(trained, image_root, tmp_path, capsys):
    marker = tmp_path / "marker"
    helper = tmp_path / "helper.py"
    helper.write_text(MARKER_PLUGIN.format(marker=str(marker)))
    state = torch.load(trained, weights_only=True)
    state["config"]["plugins"] = [str(helper)]
    hostile = tmp_path / "hostile.pt"
    torch.save(state, hostile)
    img = next((image_root / "testA").iterdir())
    code, _, err = run_main(capsys, "translate", hostile, img, "--out", tmp_path / "o", "--no-progress")
    assert code == 0, err
    code, _, err = run_main(capsys, "eval", hostile, "--extractor", "tiny", "--out", tmp_path / "e")
    assert code == 0, err
    assert not marker.exists()

    # a generator that came from a file: named, with the way to load it, still nothing imported
    state["config"]["generator"] = {"name": "reliability_marker_net", "params": {"ngf": 4, "n_blocks": 1}}
    state["plugins"]["generator"].update(name="reliability_marker_net", source="file", location=str(helper))
    torch.save(state, hostile)
    code, _, err = run_main(capsys, "translate", hostile, img, "--out", tmp_path / "o2", "--no-progress")
    assert code == 2 and "--plugins" in err and "helper.py" in err and "reliability_marker_net" in err
    assert not marker.exists()
    # loaded explicitly by the user, it works
    code, _, err = run_main(capsys, "translate", hostile, img, "--out", tmp_path / "o3", "--no-progress",
                            "--plugins", helper)
    assert code == 0, err
    assert marker.exists() and len(list((tmp_path / "o3").iterdir())) == 1


def test_plugin_file_that_is_not_python_and_pickles_get_one_message(trained, tmp_path, capsys):
    text = tmp_path / "plugin.txt"
    text.write_text("not python")
    code, _, err = run_main(capsys, "plugins", "--plugins", text)
    assert code == 2 and "not a Python file" in err and "Traceback" not in err
    bad = tmp_path / "pickled.pt"
    torch.save({"format": 1, "payload": print}, bad)
    code, _, err = run_main(capsys, "translate", bad, trained, "--out", tmp_path / "o")
    assert code == 2 and "Python objects" in err
    assert "weights_only" not in err and "False" not in err


def test_environment_values_are_not_stored_in_checkpoints(tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("UNPAIRED_TEST_SECRET", "hunter2-secret")
    cfg = tiny_recipe("name=${oc.env:UNPAIRED_TEST_SECRET}", "train.max_steps=1")
    assert cfg.name == "hunter2-secret"  # the run itself sees the value
    train(cfg)
    path = tmp_path / "run" / "checkpoints" / "latest.pt"
    assert b"hunter2-secret" not in path.read_bytes()
    state = checkpoint.load(path)
    from unpaired.engine.restore import checkpoint_recipe

    assert checkpoint_recipe(state, path).name == "${oc.env:UNPAIRED_TEST_SECRET}"  # as written, unresolved


# ----------------------------------------------------------------------------- 2. NaN
def _finite(path):
    state = checkpoint.load(path)
    nets = state["nets"].values()
    return state["step"], all(torch.isfinite(t).all() for net in nets for t in net.values() if t.is_floating_point())


def test_nan_never_overwrites_a_good_checkpoint(trained, image_root, tmp_path, capsys):
    before = trained.read_bytes()
    args = ["run", RECIPE, *TINY, f"data.params.root={image_root}", f"out_dir={tmp_path / 'run'}",
            "disable_plugins=[progress]", "--resume", "train.lr=1e30", "train.max_steps=8"]
    # caught at a log step (the losses)
    code, _, err = run_main(capsys, *args, "train.checkpoint_every=2", "train.log_every=2")
    text = " ".join(err.split())
    assert code != 0
    assert "diverged" in text and str(trained) in text and "(step 2)" in text and "--resume" in text
    assert trained.read_bytes() == before  # the good checkpoint, untouched
    assert _finite(trained) == (2, True)
    # caught before a checkpoint between log steps (the weights)
    code, _, err = run_main(capsys, *args, "train.checkpoint_every=1", "train.log_every=100")
    text = " ".join(err.split())
    assert code != 0 and "diverged" in text and "weights" in text
    step, finite = _finite(trained)
    assert finite and f"(step {step})" in text


def test_a_huge_finite_loss_warns_once(caplog):
    from unpaired.runtime.health import Health

    h = Health("x/latest.pt")
    with caplog.at_level("WARNING", logger="unpaired"):
        h.check_metrics(1, {"loss_g": 15.0})
        h.check_metrics(2, {"loss_g": 3000.0})
        h.check_metrics(3, {"loss_g": 4000.0})
    assert sum("diverging" in r.message for r in caplog.records) == 1
    with pytest.raises(UnpairedError, match="no checkpoint had been written"):
        h.check_metrics(4, {"loss_g": float("nan")})


# ----------------------------------------------------------------------------- 3. one run per folder
def test_a_second_run_in_the_same_folder_is_refused(image_root, tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from unpaired.runtime import runlock; "
                               f"runlock.acquire({str(out)!r}); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        out.mkdir()
        assert holder.stdout.readline().strip() == "held"
        args = ["run", RECIPE, *TINY, f"data.params.root={image_root}", f"out_dir={out}", "disable_plugins=[progress]"]
        code, _, err = run_main(capsys, *args)
        assert code == 2 and str(out) in err and f"pid {holder.pid}" in err and "in use" in err
        assert not (out / "checkpoints").exists() and not (out / "config.yaml").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (as after kill -9): its lock is stale and taken over
    code, _, err = run_main(capsys, *args, "train.max_steps=1")
    assert code == 0, err
    assert not (out / ".lock").exists()  # released at the end


def test_a_stale_lock_of_a_dead_process_is_taken_over(tiny_recipe, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text(f"pid={dead_pid()}\nhost={socket.gethostname()}\nsince=then\n")
    result = train(tiny_recipe("train.max_steps=1"))
    assert result.step == 1 and not (out / ".lock").exists()


# ----------------------------------------------------------------------------- 4. double Ctrl-C
@pytest.mark.slow
def test_a_second_signal_during_the_save_is_reported_honestly(trained, image_root, tmp_path, capsys, monkeypatch):
    class SignalAtStep3:
        @unpaired.hookimpl
        def on_step(self, run, step):
            if step == 3:
                os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C: stop after this step

    real_save = checkpoint.save

    def interrupted_save(state, path, kept_step=None):
        if state.get("step") == 3:
            raise KeyboardInterrupt  # the second Ctrl-C, in the middle of the write
        return real_save(state, path, kept_step=kept_step)

    monkeypatch.setattr(checkpoint, "save", interrupted_save)
    unpaired.register_plugin(SignalAtStep3(), name="signal_at_step3")
    try:
        code, out, err = run_main(capsys, "run", RECIPE, *TINY, f"data.params.root={image_root}",
                                  f"out_dir={tmp_path / 'run'}", "disable_plugins=[]", "--resume",
                                  "train.max_steps=8", "train.checkpoint_every=100")
    finally:
        unpaired.unregister_plugin("signal_at_step3")
    text = " ".join((out + err).split())
    assert code == 130
    assert "the checkpoint of step 3 was NOT written" in text and "holds step 2" in text
    assert checkpoint.load(trained)["step"] == 2


# ----------------------------------------------------------------------------- 5. FIFO
@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_like_an_image_is_skipped(image_root):
    from unpaired.data.images import find_images

    fifo = image_root / "trainA" / "x.png"
    os.mkfifo(fifo)
    assert fifo not in find_images(image_root / "trainA")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "unpaired", "data", "check", str(image_root)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < 60


# ----------------------------------------------------------------------------- 6. disk full
def test_disk_full_keeps_the_checkpoint_and_says_so(trained, image_root, tmp_path, capsys, monkeypatch):
    folder = trained.parent
    stale = folder / f".latest.pt.tmp{dead_pid()}"
    live = folder / ".latest.pt.tmp1"  # pid 1 is alive: not ours to remove
    stale.write_bytes(b"x" * 1000)
    live.write_bytes(b"x")
    before = trained.read_bytes()

    def full_disk(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    code, _, err = run_main(capsys, "run", RECIPE, *TINY, f"data.params.root={image_root}",
                            f"out_dir={tmp_path / 'run'}", "disable_plugins=[progress]", "--resume",
                            "train.max_steps=3", "train.checkpoint_every=1")
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert "no space left on" in text and "MB needed" in text and "checkpoint of step 2" in text and "intact" in text
    assert trained.read_bytes() == before
    assert not stale.exists() and live.exists()
    assert [p.name for p in folder.iterdir() if ".tmp" in p.name] == [live.name]  # no temp file of ours left


# ----------------------------------------------------------------------------- 7. exit 2 naming the key
@pytest.mark.parametrize("override,key", [
    ("train.lr=inf", "train.lr"),
    ("train.lr=nan", "train.lr"),
    ("train.lr=-1", "train.lr"),
    ("losses.cycle.weight=nan", "losses.cycle.weight"),
    ("train.samples=0", "train.samples"),
    ("train.betas=[2,2]", "train.betas"),
    ("train.init_gain=nan", "train.init_gain"),
    (f"train.seed={10**23}", "train.seed"),
    ("generator.params={ngf: 0, n_blocks: 1}", "generator.params.ngf"),
    ("generator.params={ngf: -4, n_blocks: 1}", "generator.params.ngf"),
    ("generator.params={ngf: 4, n_blocks: -1}", "generator.params.n_blocks"),
    ("discriminator.params={ndf: 4, n_layers: 30}", "discriminator.params.n_layers"),
    ("generator.params={ngf: 100000, n_blocks: 9}", "generator.params"),
])
def test_bad_values_exit_2_naming_the_key(capsys, image_root, tmp_path, override, key):
    code, _, err = run_main(capsys, "run", RECIPE, *TINY, f"data.params.root={image_root}",
                            f"out_dir={tmp_path / 'run'}", "disable_plugins=[progress]", override)
    assert code == 2 and key in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize("body", ["name: ${out_dir}\nout_dir: ${name}\n", "name: ${no.such.key}\n"])
def test_interpolation_errors_in_a_recipe_file_exit_2(capsys, tmp_path, body):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(body)
    code, _, err = run_main(capsys, "run", recipe)
    assert code == 2 and str(recipe) in err and "Traceback" not in err, err


@pytest.mark.parametrize("drop", ["config", "translators", "nets"])  # what translate needs (format 2)
def test_checkpoints_missing_a_part_exit_2(trained, tmp_path, capsys, drop):
    state = torch.load(trained, weights_only=True)
    del state[drop]
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    code, _, err = run_main(capsys, "translate", bad, trained, "--out", tmp_path / "o")
    assert code == 2 and drop in err and "Traceback" not in err, err


def test_wrong_shaped_weights_on_resume_and_absurd_networks_exit_2(trained, image_root, tmp_path, capsys):
    state = torch.load(trained, weights_only=True)
    key = next(iter(state["nets"]["g_ab"]))
    state["nets"]["g_ab"][key] = torch.zeros(3, 3)
    torch.save(state, trained)
    code, _, err = run_main(capsys, "run", RECIPE, *TINY, f"data.params.root={image_root}",
                            f"out_dir={tmp_path / 'run'}", "disable_plugins=[progress]", "--resume")
    assert code == 2 and "--resume" in err and "Traceback" not in err, err

    state["config"]["generator"]["params"] = {"ngf": 100000, "n_blocks": 9}
    huge = tmp_path / "huge.pt"
    torch.save(state, huge)
    start = time.monotonic()
    code, _, err = run_main(capsys, "translate", huge, trained, "--out", tmp_path / "o")
    assert code == 2 and "parameters" in err and "generator" in err
    assert time.monotonic() - start < 30


class BadPlugins:
    """Generators and datasets that break the contract."""

    @unpaired.hookimpl
    def register_generators(self, register):
        from torch import nn

        class Bad(nn.Module):
            def __init__(self, how, cin, cout):
                super().__init__()
                self.how, self.conv = how, nn.Conv2d(cin, cout, 3, padding=1)

            def forward(self, x):
                y = self.conv(x)
                if self.how == "size":
                    return y[..., 1:, :]
                if self.how == "channels":
                    return torch.cat([y, y], 1)
                return y.double()

        for how in ("size", "channels", "dtype"):
            register(f"rel_bad_{how}", lambda in_channels, out_channels, how=how: Bad(how, in_channels, out_channels))

    @unpaired.hookimpl
    def register_datasets(self, register):
        class Items(torch.utils.data.Dataset):
            def __init__(self, how):
                self.how = how

            def __len__(self):
                return 6

            def __getitem__(self, i):
                if self.how == "raising" and i == 1:
                    raise OSError("the disk hiccupped")
                side = 32 + 4 * i if self.how == "varying" else 32
                return {"A": torch.zeros(3, side, side), "B": torch.zeros(3, side, side)}

        for how in ("varying", "raising"):
            register(f"rel_{how}", lambda how=how: Items(how))


@pytest.mark.parametrize("override,words", [
    ("generator.name=rel_bad_size", ["rel_bad_size", "contract", "(1, 3, 31, 32)"]),
    ("generator.name=rel_bad_channels", ["rel_bad_channels", "contract", "(1, 6, 32, 32)"]),
    ("generator.name=rel_bad_dtype", ["rel_bad_dtype", "contract", "float64"]),
    ("data.name=rel_varying", ["rel_varying", "contract", "different sizes"]),
    ("data.name=rel_raising", ["item 1", "the disk hiccupped", "contract"]),
    ("data.name=rel_raising data.num_workers=1", ["item 1", "the disk hiccupped", "contract"]),  # in a worker
])
def test_plugins_breaking_the_contract_are_named(capsys, image_root, tmp_path, override, words):
    extra = ["generator.params={}"] if override.startswith("generator") else ["data.params={}", "data.test_params=null"]
    override, *more = override.split(" ")
    extra += more
    unpaired.register_plugin(BadPlugins(), name="rel_bad_plugins")
    try:
        code, _, err = run_main(capsys, "run", RECIPE, *TINY, f"out_dir={tmp_path / 'run'}",
                                "disable_plugins=[progress]", f"data.params.root={image_root}", override, *extra)
    finally:
        unpaired.unregister_plugin("rel_bad_plugins")
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in err and "worker" not in err, err
    for w in words:
        assert w in text, text


# ----------------------------------------------------------------------------- kill -9 equivalence
@pytest.mark.slow
def test_kill_9_mid_run_then_resume_gives_the_same_weights(tiny_recipe, image_root, tmp_path):
    steps = ["train.max_steps=6", "train.checkpoint_every=1", "train.log_every=2"]
    twin = train(tiny_recipe(*steps, out="twin"))
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "unpaired", "run", str(RECIPE), *TINY, f"data.params.root={image_root}",
            f"out_dir={out}", "disable_plugins=[progress]", *steps]
    # the twin's thread count (conftest's): on one core the child would pick 1 and sum in another order
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    ckpt = out / "checkpoints" / "latest.pt"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not ckpt.exists():
        pytest.fail(f"the run wrote no checkpoint before it ended: {proc.stderr.read().decode()[-2000:]}")
    killed_at = checkpoint.load(ckpt)["step"]
    assert (out / ".lock").exists()  # left behind by the killed run: stale now
    resumed = train(tiny_recipe(*steps, out="killed"), resume=True)
    assert resumed.step == twin.step == 6
    a, b = checkpoint.load(twin.checkpoint)["nets"], checkpoint.load(resumed.checkpoint)["nets"]
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (killed_at, net, k)
