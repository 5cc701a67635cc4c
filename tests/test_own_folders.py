"""The two-folder route (``data.params.a=DIR data.params.b=DIR``): a user's own folders are the
data every page speaks of. Nothing comes from the recipe's bundled set (its ``root``): the
run's first line, the held-out images of the figure and the report, and ``unpaired eval`` all
name the user's images, and say plainly when they are training images, not held out."""
import logging

import pytest

from unpaired.cli import main
from unpaired.report.curves import curves

from helpers import RECIPE, TINY, make_image_root


def run_main(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A bundled-set stand-in (ROOT with trainA ... testB) and the user's own two folders
    (other names, other images), plus two held-out folders of theirs."""
    base = tmp_path_factory.mktemp("own")
    bundled = make_image_root(base / "bundled", seed=1)
    mine = make_image_root(base / "mine", n=4, seed=2)
    for folder in mine.iterdir():
        for image in folder.iterdir():
            image.rename(folder / f"mine_{folder.name}_{image.name}")
    return bundled, mine


def train_own(capsys, caplog, tmp_path, bundled, mine, *extra):
    run = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="unpaired"):
        code, out, err = run_main(capsys, "run", RECIPE, *TINY, f"data.params.root={bundled}",
                                  f"data.params.a={mine / 'trainA'}", f"data.params.b={mine / 'trainB'}",
                                  f"out_dir={run}", "train.max_steps=2", "train.precision=fp32", *extra)
    assert code == 0, err
    return run, out + err + caplog.text


def evaluate(capsys, caplog, run, tmp_path):
    """(unpaired eval's output, its line naming the data it scores)."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="unpaired"):
        code, out, err = run_main(capsys, "eval", run, "--extractor", "tiny", "--out", tmp_path / "eval")
    assert code == 0, err
    return out, next(r.getMessage() for r in caplog.records if r.getMessage().startswith("data: "))


@pytest.mark.slow
def test_own_folders_without_held_out_ones_say_they_show_training_images(own, tmp_path, capsys, caplog):
    bundled, mine = own
    run, said = train_own(capsys, caplog, tmp_path, bundled, mine)
    first = next(line for line in said.splitlines() if line.startswith("training "))
    assert f"A {mine / 'trainA'} (4 images), B {mine / 'trainB'} (4 images)" in first, first
    assert "held out none" in first and str(bundled) not in first, first
    assert "not held out" in said and "data.params.test_a" in said
    # the report's timeline and figure: the user's images, called training images
    html = (run / "report.html").read_text()
    assert "mine_trainA_" in html and "mine_testA_" not in html and "not held out" in html
    assert str(bundled / "testA") not in html
    # eval scores the user's images and says which
    out, data = evaluate(capsys, caplog, run, tmp_path)
    assert "training images (no held-out split)" in out, out
    assert f"A {mine / 'trainA'} (4 images)" in data and str(bundled) not in data, data


@pytest.mark.slow
def test_own_held_out_folders_are_what_the_pages_show(own, tmp_path, capsys, caplog):
    bundled, mine = own
    run, said = train_own(capsys, caplog, tmp_path, bundled, mine, f"data.params.test_a={mine / 'testA'}",
                          f"data.params.test_b={mine / 'testB'}")
    first = next(line for line in said.splitlines() if line.startswith("training "))
    assert f"held out A {mine / 'testA'} (4 images), B {mine / 'testB'} (4 images)" in first, first
    html = (run / "report.html").read_text()
    assert "mine_testA_" in html and "not held out" not in html
    out, data = evaluate(capsys, caplog, run, tmp_path)
    assert "test split" in out, out
    assert f"A {mine / 'testA'} (4 images)" in data and str(bundled) not in data, data


@pytest.mark.parametrize("given, named", [(["data.params.a=X"], "data.params.a and data.params.b go together"),
                                          (["data.params.test_a=X"], "data.params.test_a and data.params.test_b"),
                                          (["data.params.test_a=X", "data.params.test_b=Y"], "set data.params.a")])
def test_half_a_pair_of_folders_is_refused(own, tmp_path, capsys, given, named):
    bundled, _ = own
    code, _, err = run_main(capsys, "run", RECIPE, *TINY, f"data.params.root={bundled}", *given,
                            f"out_dir={tmp_path / 'run'}")
    assert code == 2 and named in err, err


def test_the_report_shows_no_training_term_as_evaluation(finished_run, kept_run):
    # a run without evaluation: CycleGAN's cycle_a (a weighted training term) is a training curve
    trained = curves(finished_run / "metrics.csv")
    assert not trained.evaluation and not trained.eval_rows
    assert "cycle_a" in [s.name for s in trained.terms]
    html = (finished_run / "report.html").read_text()
    assert "No evaluation ran during this run" in html and "unpaired eval" in html
    assert "best in bold" not in html
    # a run that evaluated: its scores, under their own names, at the steps where they ran
    scored = curves(kept_run / "metrics.csv")
    assert [step for step, _ in scored.eval_rows] == [2, 4]
    assert {"kid_a2b", "cycle_l1_a"} <= set(scored.eval_rows[0][1]) and "cycle_a" not in scored.eval_rows[0][1]
    titles = [title for title, _ in scored.evaluation]
    assert any(t.startswith("KID") for t in titles) and any("unweighted" in t for t in titles), titles
