"""No write through a link planted in a run folder, and a damaged metrics.csv costs a warning:
the lock, metrics.csv, TensorBoard's events and every whole-file output never write through a
symbolic link (nor into a hard link to a file elsewhere); a run folder whose lock, marker,
metrics.csv, checkpoints/, samples/ or tensorboard/ is a link is refused, naming it; a
metrics.csv that is not UTF-8 text is read around (report, eval) or kept aside (resume)."""
import os
import types

import pytest

from unpaired import UnpairedError
from unpaired.store import checkpoint, files
from unpaired.cli import main
from unpaired.runtime import runlock

from helpers import RECIPE, TINY

RUN = ["run", RECIPE, *TINY, "disable_plugins=[progress]"]
PRECIOUS = "precious: not unpaired's to write\n"
BINARY = bytes(range(256)) * 4 + b"\xff\xfe\x00\n\x80\x81,\xc3\x28\n"


def run_main(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())  # a message wrapped to the terminal, as one line


def resume(capsys, run_dir, image_root, steps=3):
    return run_main(capsys, *RUN, f"data.params.root={image_root}", f"out_dir={run_dir}", "--resume",
                    f"train.max_steps={steps}", "train.precision=fp32")


def victim(tmp_path, name="victim.txt"):
    path = tmp_path / name
    path.write_text(PRECIOUS)
    return path


def listing(folder):
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*"))


# ============================================================================ the lock
def test_a_lock_that_is_a_link_is_refused_on_resume(run_copy, image_root, tmp_path, capsys):
    target = victim(tmp_path)
    (run_copy / runlock.NAME).symlink_to("../victim.txt")  # ln -s ../victim.txt run/.lock
    code, _, err = resume(capsys, run_copy, image_root)
    assert code == 2 and "Traceback" not in err, err
    assert f"{run_copy / runlock.NAME} is a symbolic link (to ../victim.txt)" in err, err
    assert target.read_text() == PRECIOUS
    assert checkpoint.load(run_copy)["step"] == 2


@pytest.mark.parametrize("how", ["symbolic", "dangling", "hard"])
def test_the_lock_is_opened_without_following_a_link(tmp_path, how):
    """runlock.acquire itself (O_NOFOLLOW, one name), whatever checked the folder before."""
    out = tmp_path / "run"
    out.mkdir()
    target = victim(tmp_path) if how != "dangling" else tmp_path / "made.txt"
    lock = out / runlock.NAME
    os.link(target, lock) if how == "hard" else lock.symlink_to(target)
    with pytest.raises(UnpairedError, match="hard link" if how == "hard" else "symbolic link") as err:
        runlock.acquire(out)
    assert str(lock) in str(err.value)
    if how == "dangling":
        assert not target.exists()  # O_CREAT through the link would have made it
    else:
        assert target.read_text() == PRECIOUS


# ============================================================================ metrics.csv
def test_a_metrics_csv_that_is_a_link_is_refused_on_resume(run_copy, image_root, tmp_path, capsys):
    target = victim(tmp_path)
    (run_copy / "metrics.csv").unlink()
    (run_copy / "metrics.csv").symlink_to(target)
    code, _, err = resume(capsys, run_copy, image_root)
    assert code == 2 and "metrics.csv is a symbolic link" in err and str(target) in err, err
    assert target.read_text() == PRECIOUS


def test_a_dangling_metrics_csv_link_is_refused_on_a_fresh_start(image_root, tmp_path, capsys):
    out = tmp_path / "new"
    out.mkdir()
    runlock.mark(out)  # a folder of ours, before its first checkpoint
    made = tmp_path / "made.csv"
    (out / "metrics.csv").symlink_to(made)
    code, _, err = run_main(capsys, *RUN, f"data.params.root={image_root}", f"out_dir={out}", "train.max_steps=1")
    assert code == 2 and "metrics.csv is a symbolic link" in err and str(made) in err, err
    assert not made.exists()


def test_the_metrics_plugin_never_appends_through_a_link(tmp_path):
    """plugins/metrics_csv.py by itself: a link planted during the run is refused, not followed."""
    from unpaired.plugins.metrics_csv import MetricsCSV

    path = tmp_path / "metrics.csv"
    log = MetricsCSV(path)
    log.log({"step": 1, "loss": 0.5})
    path.rename(tmp_path / "moved.csv")
    target = victim(tmp_path)
    path.symlink_to(target)
    with pytest.raises(UnpairedError, match="symbolic link"):
        log.log({"step": 2, "loss": 0.4})
    assert target.read_text() == PRECIOUS
    with pytest.raises(UnpairedError, match="symbolic link"):
        MetricsCSV(path, resume_step=1)
    assert target.read_text() == PRECIOUS


@pytest.mark.slow
def test_a_hard_link_to_metrics_csv_keeps_its_content_on_resume(run_copy, image_root, tmp_path, capsys):
    mine = tmp_path / "mine.csv"
    os.link(run_copy / "metrics.csv", mine)  # ln run/metrics.csv mine.csv
    before = mine.read_bytes()
    code, _, err = resume(capsys, run_copy, image_root)
    assert code == 0, err
    assert mine.read_bytes() == before
    steps = [line.split(",")[0] for line in (run_copy / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2", "3"]


# ============================================================================ the marker and the folders
def test_a_marker_that_is_a_link_does_not_make_a_folder_ours(image_root, tmp_path, capsys):
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (mine / runlock.MARKER).symlink_to(victim(tmp_path))
    code, _, err = run_main(capsys, *RUN, f"data.params.root={image_root}", f"out_dir={mine}", "train.max_steps=1")
    assert code == 2 and f"{runlock.MARKER} is a symbolic link" in err, err
    assert sorted(p.name for p in mine.iterdir()) == [runlock.MARKER, "notes.txt"]
    assert not runlock.marked(mine)
    assert (tmp_path / "victim.txt").read_text() == PRECIOUS


@pytest.mark.parametrize("folder", ["checkpoints", "samples", "tensorboard"])
def test_a_run_folder_whose_subfolder_is_a_link_is_refused(run_copy, image_root, tmp_path, capsys, folder):
    elsewhere = tmp_path / "elsewhere"
    (run_copy / folder).rename(elsewhere)
    (run_copy / folder).symlink_to(elsewhere)
    before = listing(elsewhere)
    code, _, err = resume(capsys, run_copy, image_root)
    assert code == 2 and f"{run_copy / folder} is a symbolic link (to {elsewhere})" in err, err
    assert "out_dir on another disk" in err  # what to do instead
    assert listing(elsewhere) == before


def test_the_run_folder_itself_may_be_a_link(run_copy, image_root, tmp_path, capsys):
    link = tmp_path / "link_to_run"
    link.symlink_to(run_copy)
    code, _, err = resume(capsys, link, image_root)
    assert code == 0, err
    assert checkpoint.load(run_copy)["step"] == 3


# ============================================================================ TensorBoard
def test_tensorboard_events_are_appended_through_our_own_descriptor(tmp_path):
    pytest.importorskip("tensorboard")
    from unpaired.plugins import tensorboard as tb

    run = types.SimpleNamespace(out_dir=tmp_path / "run", start_step=0, config={"name": "x"}, state={})
    tb.on_train_start(run)
    (events,) = (run.out_dir / tb.SUBDIR).iterdir()
    events.rename(tmp_path / "events.orig")
    target = victim(tmp_path)
    events.symlink_to(target)  # planted while the run writes
    tb.on_log(run, 1, {"loss": 0.5})
    tb.on_checkpoint(run, 1, None)
    tb.on_train_end(run, 1, "")
    assert target.read_text() == PRECIOUS
    events.unlink()
    (tmp_path / "events.orig").rename(events)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run.out_dir / tb.SUBDIR))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(1, 0.5)]


def test_a_tensorboard_folder_that_is_a_link_is_refused_by_the_plugin(tmp_path):
    pytest.importorskip("tensorboard")
    from unpaired.plugins import tensorboard as tb

    (tmp_path / "run").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "run" / tb.SUBDIR).symlink_to(tmp_path / "elsewhere")
    run = types.SimpleNamespace(out_dir=tmp_path / "run", start_step=0, config={}, state={})
    with pytest.raises(UnpairedError, match="symbolic link"):
        tb.on_train_start(run)
    assert list((tmp_path / "elsewhere").iterdir()) == []


# ============================================================================ whole files
def test_a_link_planted_at_a_temporary_name_is_never_written_through(tmp_path):
    target = victim(tmp_path)
    out = tmp_path / "out" / "a.txt"
    out.parent.mkdir()
    files.temp_name(out).symlink_to(target)  # .a.txt.tmpPID: the name is predictable
    files.write_text(out, "new")
    assert target.read_text() == PRECIOUS
    assert out.read_text() == "new" and not out.is_symlink()
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.txt"]


@pytest.mark.parametrize("where", ["report.html", "its temporary"])
def test_the_report_never_writes_through_a_link(run_copy, tmp_path, capsys, where):
    target = victim(tmp_path)
    name = run_copy / "report.html"
    name.unlink(missing_ok=True)  # the run's own
    (name if where == "report.html" else files.temp_name(name)).symlink_to(target)
    code, _, err = run_main(capsys, "report", run_copy)
    assert code == 0, err
    assert target.read_text() == PRECIOUS
    assert not name.is_symlink() and "<html" in name.read_text()


def test_open_append_refuses_links_and_other_files(tmp_path):
    target = victim(tmp_path)
    (tmp_path / "sym").symlink_to(target)
    os.link(target, tmp_path / "hard")
    for name, words in (("sym", "symbolic link (to "), ("hard", "hard link")):
        with pytest.raises(UnpairedError, match=words.replace("(", r"\(")):
            files.open_append(tmp_path / name)
    assert target.read_text() == PRECIOUS
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        with pytest.raises(UnpairedError, match="not a regular file"):  # and no wait for a reader
            files.open_append(tmp_path / "fifo")
    with files.open_append(tmp_path / "log.txt") as f:
        f.write("one\n")
    with files.open_append(tmp_path / "log.txt") as f:
        f.write("two\n")
    assert (tmp_path / "log.txt").read_text() == "one\ntwo\n"


# ============================================================================ a binary metrics.csv
def damage(run_dir, how):
    path = run_dir / "metrics.csv"
    if how == "binary":
        path.write_bytes(BINARY)
    else:  # one row of the log written over by something else
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(lines[0] + lines[1] + b"\xff\xfe\x00garbage\x81,\x82\n" + b"".join(lines[2:]))
    return path.read_bytes()


@pytest.mark.parametrize("how", ["binary", "a damaged row"])
def test_report_reads_around_a_binary_metrics_csv(run_copy, capsys, caplog, how):
    damage(run_copy, how)
    code, _, err = run_main(capsys, "report", run_copy)
    assert code == 0 and "Traceback" not in err, err
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and str(run_copy / "metrics.csv") in warned[0], warned
    html = (run_copy / "report.html").read_text()
    assert ("loss_g" in html) == (how != "binary")  # the rows that read are drawn


def test_eval_reads_around_a_binary_metrics_csv(run_copy, tmp_path, capsys, caplog):
    damage(run_copy, "binary")
    code, _, err = run_main(capsys, "eval", run_copy, "--extractor", "tiny", "--out", tmp_path / "ev",
                            "--split", "train", "--max-images", "4")
    assert code == 0 and "Traceback" not in err, err
    assert f"{run_copy / 'metrics.csv'} is not a metrics log" in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("how", ["binary", "a damaged row"])
def test_resume_with_a_binary_metrics_csv_keeps_it_aside_and_goes_on(run_copy, image_root, capsys, caplog, how):
    before = damage(run_copy, how)
    code, _, err = resume(capsys, run_copy, image_root)
    assert code == 0 and "Traceback" not in err, err
    aside = run_copy / "metrics.csv.damaged"
    assert f"kept as {aside}" in caplog.text, caplog.text
    assert aside.read_bytes() == before  # nothing unpaired cannot read is destroyed
    assert checkpoint.load(run_copy)["step"] == 3
    text = (run_copy / "metrics.csv").read_text(encoding="utf-8")
    steps = [line.split(",")[0] for line in text.splitlines()[1:]]
    assert text.startswith("step,") and steps == (["3"] if how == "binary" else ["1", "2", "3"])
    # a second damage later gets a name of its own
    damage(run_copy, "binary")
    code, _, err = resume(capsys, run_copy, image_root, steps=4)
    assert code == 0, err
    assert aside.read_bytes() == before and (run_copy / "metrics.csv.damaged.2").read_bytes() == BINARY


# ============================================================================ a partial download
def test_a_partial_download_is_never_appended_through_a_link(tmp_path, monkeypatch):
    from unpaired.data import download

    class Response:
        status, headers = 206, {"Content-Length": "4", "Content-Range": f"bytes {len(PRECIOUS)}-"}

        def __init__(self, *args, **kwargs):
            self.left = b"more"

        def read(self, n):
            data, self.left = self.left, b""
            return data

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(download, "urlopen", Response)
    target = victim(tmp_path)
    part = tmp_path / ".horse2zebra.zip.part"
    part.symlink_to(target)  # the partial file's name is predictable
    with pytest.raises(UnpairedError, match="symbolic link"):
        download.fetch("http://example.invalid/x.zip", part, progress=False, retries=0)
    assert target.read_text() == PRECIOUS
