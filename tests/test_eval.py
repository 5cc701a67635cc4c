"""The Evaluator (metrics on known inputs, cached real features, paired data) and `unpaired eval`."""
import csv
import json

import pytest
import torch
from PIL import Image
from torch import nn

from unpaired import UnpairedError
from unpaired.evaluation import metrics
from unpaired.evaluation.evaluate import (LOWER_IS_BETTER, METRICS, SEMANTIC, Evaluator, better, best_in_metrics_csv,
                                         check_metric)
from unpaired.evaluation.features import TinyFeatures, compute_features

from helpers import make_image_root, tiny_recipe
from test_translate import QUIET, cli


class Tensors(torch.utils.data.Dataset):
    def __init__(self, a, b, paths=None, paired=False):
        self.a, self.b, self.paths = a, b, paths
        if paired:
            self.paired = True

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        item = {"A": self.a[i], "B": self.b[i]}
        if self.paths:
            item["A_path"], item["B_path"] = self.paths[i]
        return item


class Model(nn.Module):
    """Both generators swap the colour channels R<->B: an objective as evaluation sees one
    (``translators`` and ``networks()``)."""

    translators = {"a2b": "g_ab", "b2a": "g_ba"}

    def __init__(self):
        super().__init__()
        self.g_ab, self.g_ba = Swap(), Swap()

    def networks(self):
        return {"g_ab": self.g_ab, "g_ba": self.g_ba}


class Swap(nn.Module):
    def forward(self, x):
        return x.flip(1)


class Counting(TinyFeatures):
    """TinyFeatures that counts the images it was given."""

    seen = 0

    def forward(self, images):
        self.seen += images.shape[0]
        return super().forward(images)


def images(n, seed, size=24):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def test_metrics_on_known_inputs_match_unpaired_metrics():
    a, b = images(10, 0), images(10, 1)
    extractor = Counting()
    ev = Evaluator(Tensors(a, b, paired=True), extractor=extractor, max_images=500, batch_size=4)
    scores = ev(Model())
    assert set(scores) == set(METRICS) - set(SEMANTIC)  # miou_a2b: only with a segmenter and labels
    fake_b, fake_a = a.flip(1), b.flip(1)  # what the model makes
    feats = lambda x: compute_features(TinyFeatures(), x)  # noqa: E731
    kid_ab = metrics.kid(feats(fake_b), feats(b))
    assert scores["kid_a2b"] == pytest.approx(kid_ab[0], rel=1e-5, abs=1e-9)
    assert scores["kid_a2b_std"] == pytest.approx(kid_ab[1], rel=1e-5, abs=1e-9)
    assert scores["fid_a2b"] == pytest.approx(metrics.fid(feats(fake_b), feats(b)), rel=1e-5)
    assert scores["fid_b2a"] == pytest.approx(metrics.fid(feats(fake_a), feats(a)), rel=1e-5)
    assert scores["psnr_a2b"] == pytest.approx(float(metrics.psnr(fake_b, b).mean()), rel=1e-6)
    assert scores["ssim_b2a"] == pytest.approx(float(metrics.ssim(fake_a, a).mean()), rel=1e-6)
    assert scores["l1_b2a"] == pytest.approx(float(metrics.l1(fake_a, a).mean()), rel=1e-6)
    # a swap twice reconstructs exactly
    assert scores["cycle_l1_a"] == pytest.approx(0, abs=1e-7) and scores["cycle_l1_b"] == pytest.approx(0, abs=1e-7)
    assert len(ev.rows) == 10 and ev.rows[3]["psnr_a2b"] == pytest.approx(float(metrics.psnr(fake_b, b)[3]))


def test_cycle_error_and_unpaired_data():
    a, b = images(6, 2), images(6, 3)
    model = Model()
    model.g_ba = nn.Sequential(Swap(), nn.Hardtanh(-0.5, 0.5))  # clips, so the cycle loses information
    scores = Evaluator(Tensors(a, b), extractor=TinyFeatures())(model)
    assert "psnr_a2b" not in scores and "l1_b2a" not in scores  # not paired: no paired metrics
    assert scores["cycle_l1_a"] == pytest.approx(float(metrics.l1(a.clamp(-0.5, 0.5), a).mean()), rel=1e-6)
    assert scores["cycle_l1_b"] == pytest.approx(float(metrics.l1(b.clamp(-0.5, 0.5), b).mean()), rel=1e-6)


def test_real_features_are_cached_across_calls_and_modes_restored():
    extractor = Counting()
    ev = Evaluator(Tensors(images(8, 4), images(8, 5)), extractor=extractor, batch_size=3)
    model = Model().train()
    first = ev(model)
    assert extractor.seen == 4 * 8  # fake B, fake A, real A, real B
    second = ev(model)
    assert extractor.seen == 4 * 8 + 2 * 8  # only the translations again
    assert first == second
    assert model.g_ab.training and model.g_ba.training


def test_repeated_images_count_once_and_max_images():
    a, b = images(6, 6), images(6, 7)
    paths = [(f"a{i}", f"b{i % 2}") for i in range(6)]  # B has 2 files, repeated as image_folder does
    extractor = Counting()
    Evaluator(Tensors(a, b, paths), extractor=extractor, max_images=5)(Model())
    assert extractor.seen == 5 + 2 + 5 + 2


def test_better_and_metric_names():
    assert "kid_a2b" in LOWER_IS_BETTER and "psnr_a2b" not in LOWER_IS_BETTER
    assert better("kid_a2b", 0.01, 0.02) and not better("kid_a2b", 0.03, 0.02)
    assert better("psnr_a2b", 30.0, 20.0) and not better("ssim_b2a", 0.5, 0.6)
    assert better("fid_a2b", 5.0, None) and better("fid_a2b", 5.0, float("nan"))
    assert not better("fid_a2b", float("nan"), 5.0)
    with pytest.raises(UnpairedError, match="kid_a2b"):
        check_metric("kid_ab")


def test_too_small_or_missing_data_is_a_user_error():
    with pytest.raises(UnpairedError, match="test_params"):
        Evaluator(None, extractor="tiny")
    with pytest.raises(UnpairedError, match="at least 2"):
        Evaluator(Tensors(images(1, 0), images(1, 1)), extractor="tiny")


def test_best_in_metrics_csv(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,g_total,kid_a2b,psnr_a2b\n50,1.0,,\n100,1.0,0.05,20\n200,1.0,0.02,19\n300,1.0,0.04,25\n")
    assert best_in_metrics_csv(path, "kid_a2b") == (0.02, 200, 0.04, 300)
    assert best_in_metrics_csv(path, "psnr_a2b") == (25.0, 300, 25.0, 300)
    assert best_in_metrics_csv(path, "fid_a2b") is None


# --------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    from unpaired.engine.trainer import train

    torch.set_num_threads(2)
    tmp = tmp_path_factory.mktemp("eval")
    root = make_image_root(tmp / "data", n=4)
    return train(tiny_recipe(root, tmp / "run", *QUIET, "eval.extractor=tiny", "eval.metric=kid_a2b")).out_dir


@pytest.mark.slow
def test_eval_command_reports_and_writes(folder_run, tmp_path, capsys):
    # a metrics.csv with evaluation columns, as the trainer writes with eval.every
    rows = list(csv.DictReader(open(folder_run / "metrics.csv")))
    fields = list(rows[0]) + ["kid_a2b"]
    with open(folder_run / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r, kid in zip(rows, (0.1, 0.3)):
            w.writerow({**r, "kid_a2b": kid})
    code, out, err = cli(capsys, "eval", folder_run, "--out", tmp_path / "ev")
    assert code == 0, err
    flat = " ".join(out.split())
    assert "NOT" in flat and "inception" in flat and "published" in flat
    assert "final (this checkpoint, step 2" in flat
    assert "best during training: 0.1 at step 1" in flat and "last logged during training: 0.3 at step 2" in flat
    summary = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert summary["extractor"] == "tiny" and summary["step"] == 2 and summary["images"] == 4
    from unpaired.runtime.devices import autocast_dtype, precision_name

    auto = precision_name(autocast_dtype("auto", torch.device("cpu")))  # fp32, or bf16 on a bf16 CPU
    assert summary["precision"] == auto and f"generators ran on cpu {auto}" in flat
    assert set(summary["metrics"]) == {"kid_a2b", "kid_a2b_std", "fid_a2b", "kid_b2a", "kid_b2a_std", "fid_b2a",
                                       "cycle_l1_a", "cycle_l1_b"}
    assert not (tmp_path / "ev" / "per_image.csv").exists()


def test_eval_against_truth_folder(folder_run, tmp_path, capsys):
    from unpaired.inference.translate import Translator

    test_a = sorted((folder_run.parent / "data" / "testA").iterdir())
    truth = tmp_path / "truth"
    truth.mkdir()
    t = Translator.from_checkpoint(folder_run, device="cpu")
    t(Image.open(test_a[0])).save(truth / (test_a[0].stem + ".png"))  # the model's own output: perfect
    Image.open(test_a[1]).save(truth / (test_a[1].stem + ".png"))  # the input itself: poor
    code, out, err = cli(capsys, "eval", folder_run, "--truth", truth, "--out", tmp_path / "ev", "--extractor", "tiny")
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "ev" / "per_image.csv")))
    assert [r["name"] for r in rows] == [test_a[0].name, test_a[1].name]
    assert float(rows[0]["psnr_a2b"]) > 40 and float(rows[0]["l1_a2b"]) < 0.01
    assert float(rows[1]["psnr_a2b"]) < 30
    summary = json.loads((tmp_path / "ev" / "metrics.json").read_text())["metrics"]
    assert summary["psnr_a2b"] == pytest.approx((float(rows[0]["psnr_a2b"]) + float(rows[1]["psnr_a2b"])) / 2)


@pytest.mark.slow
def test_eval_on_a_paired_dataset_and_data_override(tmp_path, capsys):
    from unpaired.engine.trainer import train

    cfg = tiny_recipe(tmp_path, tmp_path / "run", *QUIET, "data.name=synthetic", "data.params={size: 32, n: 4}",
                      "data.test_params={split: test, n: 3}")
    run = train(cfg).out_dir
    code, out, err = cli(capsys, "eval", run, "--extractor", "tiny", "--out", tmp_path / "ev")
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "ev" / "per_image.csv")))
    assert len(rows) == 3 and {"psnr_a2b", "ssim_a2b", "l1_a2b", "psnr_b2a"} <= set(rows[0])
    assert "PSNR" in out
    # synthetic has no root: a --data override is refused with the key named
    code, _, err = cli(capsys, "eval", run, "--extractor", "tiny", "--data", tmp_path)
    assert code == 2 and "root" in err


def test_eval_user_errors(folder_run, tmp_path, capsys):
    code, _, err = cli(capsys, "eval", tmp_path / "nothing_here")
    assert code == 2 and "nothing_here" in err
    code, _, err = cli(capsys, "eval", folder_run, "--extractor", "incepshun")
    assert code == 2 and "incepshun" in err and "inception" in err
    code, _, err = cli(capsys, "eval", folder_run, "--extractor", "tiny", "--data", tmp_path / "no_data")
    assert code == 2 and "no_data" in err
