"""Held-out evaluation of a trained objective: distribution, paired and cycle metrics.

    evaluator = Evaluator(test_dataset, extractor="tiny", max_images=200, device="cpu")
    scores = evaluator(model)      # an objective, or a checkpoint's Translators (unpaired.engine.restore)

Only the directions the model translates are scored: a one-sided objective (CUT) gets the
``*_a2b`` metrics, and the cycle metrics need both directions.

Metric names (flat, floats):

* ``kid_a2b``, ``kid_a2b_std``, ``fid_a2b``: G_AB(test A) against the real test B images
  (KID mean and std over subsets; FID), features from a registered ``feature_extractor``;
  ``kid_b2a``, ``kid_b2a_std``, ``fid_b2a`` the other way. Only the ``inception`` extractor
  gives numbers comparable with published FIDs; and FID is biased upwards at small N, so
  compare values at equal ``max_images`` only.
* ``cycle_l1_a``: L1 of G_BA(G_AB(a)) against a; ``cycle_l1_b``: of G_AB(G_BA(b)) against b (only
  when the model translates both ways).
* ``miou_a2b`` and ``iou_a2b_<k>``: with a ``segmenter`` (a ``semantic`` constraint's network,
  unpaired.engine.constraints) and a held-out split whose A images have labels: how well the
  segmenter finds each class of A in its translation (intersection over union of its argmax
  with the labels, per class, and their mean over the classes present): content kept.
* ``psnr_a2b``, ``ssim_a2b``, ``l1_a2b`` (and ``*_b2a``): only when ground truth exists.
  A dataset says its items are aligned pairs (B is the true translation of A, and A of B)
  with an attribute ``paired = True`` on the dataset object; ``truth=DIR`` gives A->B
  ground truth as files named like the A inputs (only for datasets whose items carry
  ``A_path``); those are compared at the truth file's resolution.

L1 values are mean absolute errors on the [0, 1] scale, as in :mod:`unpaired.evaluation.metrics`.
The real images' features are computed once and cached across calls: a trainer can call
the same Evaluator every ``eval.every`` steps.
"""
from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from . import metrics as M
from ..store import files
from ..errors import UnpairedError
from .features import compute_features
from ..data.images import IMAGE_EXTENSIONS, load_image
from ..store.rng import seeded
from ..runtime.devices import autocast
from ..data.tensors import pad_to_multiple, size_multiple, to_tensor

DISTRIBUTION = ("kid_a2b", "kid_a2b_std", "fid_a2b", "kid_b2a", "kid_b2a_std", "fid_b2a")
CYCLE = ("cycle_l1_a", "cycle_l1_b")  # named apart from CycleGAN's (weighted) training terms
PAIRED = ("psnr_a2b", "ssim_a2b", "l1_a2b", "psnr_b2a", "ssim_b2a", "l1_b2a")
SEMANTIC = ("miou_a2b",)  # and iou_a2b_<k> per class
METRICS = DISTRIBUTION + CYCLE + PAIRED + SEMANTIC
HIGHER_IS_BETTER = frozenset({"psnr_a2b", "psnr_b2a", "ssim_a2b", "ssim_b2a", "miou_a2b"})
LOWER_IS_BETTER = frozenset(METRICS) - HIGHER_IS_BETTER


def check_metric(name: str, key: str = "eval.metric") -> str:
    """Raise an UnpairedError unless ``name`` is a metric the Evaluator reports."""
    if name not in METRICS:
        import difflib

        close = difflib.get_close_matches(str(name), METRICS, n=2)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UnpairedError(f"{key}: {name!r} is not an evaluation metric.{hint} Metrics: {', '.join(METRICS)} "
                            "(psnr/ssim/l1 only for paired test data)")
    return name


def better(metric: str, new: float | None, old: float | None) -> bool:
    """True when ``new`` improves on ``old`` for ``metric`` (lower is better except PSNR
    and SSIM). A missing or NaN ``old`` is always improved on; a NaN ``new`` never improves."""
    check_metric(metric)
    if new is None or (isinstance(new, float) and math.isnan(new)):
        return False
    if old is None or (isinstance(old, float) and math.isnan(old)):
        return True
    return new > old if metric in HIGHER_IS_BETTER else new < old


def kid_subsets(n_x: int, n_y: int, subset_size: int = 1000, subsets: int = 100) -> int:
    """KID's subset count: with equal sets no larger than a subset, every subset is the whole
    of both sets, so one subset gives the same mean (and std 0) a hundred times faster."""
    return 1 if n_x == n_y <= subset_size else subsets


def is_paired(dataset: object) -> bool:
    """Whether a dataset's items are aligned pairs (its ``paired`` attribute)."""
    return bool(getattr(dataset, "paired", False))


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """Extractors take RGB: grayscale is repeated, extra channels dropped."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]


class Evaluator:
    """Scores a model on a held-out ``dataset`` (items ``{"A", "B"}`` in [-1, 1]).

    ``extractor``: a registered feature-extractor name or an ``nn.Module``; ``max_images``: test
    items used (all when fewer); ``device``: where the generators and the extractor run (the
    model is expected there); ``amp_dtype``: autocast for the generators (e.g. torch.bfloat16);
    ``truth``: a folder of A->B ground truth files named like the A inputs; ``segmenter``: a
    callable images -> class logits (N, K, H, W) for the per-class agreement (``miou_a2b``).
    """

    # dataset: a plugin's map-style dataset with a length (torch's Dataset type declares no __len__), or None
    def __init__(self, dataset: Any, extractor: str | nn.Module = "inception",
                 extractor_params: Mapping[str, Any] | None = None, max_images: int = 500, batch_size: int = 16,
                 device: str | torch.device = "cpu", amp_dtype: torch.dtype | None = None,
                 truth: str | os.PathLike | None = None, segmenter: Any = None) -> None:
        if dataset is None:
            raise UnpairedError("evaluation needs a held-out dataset: set data.test_params (e.g. {split: test})")
        if max_images < 2:
            raise UnpairedError(f"eval.max_images: {max_images!r} must be at least 2 (FID and KID need 2 images)")
        if batch_size < 1:
            raise UnpairedError(f"eval.batch_size: {batch_size!r} must be at least 1")
        self.dataset = dataset
        self.n = min(len(dataset), max_images)
        if self.n < 2:
            raise UnpairedError(f"the held-out dataset has {len(dataset)} item(s); evaluation needs at least 2")
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.amp_dtype = amp_dtype
        self.paired = is_paired(dataset)
        self.truth = Path(truth) if truth is not None else None
        if self.truth is not None and not self.truth.is_dir():
            raise UnpairedError(f"--truth: {self.truth} is not a folder")
        self.extractor_name = extractor if isinstance(extractor, str) else type(extractor).__name__
        self._extractor_spec = (extractor, dict(extractor_params or {}))
        self._extractor: nn.Module | None = None
        self._real: dict[str, torch.Tensor] | None = None  # {"A": feats, "B": feats}, computed on the first call
        self.rows: list[dict] = []  # per-image paired metrics of the last call
        self.segmenter = segmenter

    # -- pieces ----------------------------------------------------------------------
    @property
    def extractor(self) -> nn.Module:
        if self._extractor is None:
            spec, params = self._extractor_spec
            if isinstance(spec, str):
                from ..loading import get_registry

                spec = get_registry().create("feature_extractor", spec, params, key="eval.extractor")
            self._extractor = spec.to(self.device).eval()
        return self._extractor

    def _batches(self) -> Iterator[tuple[int, dict[str, Any]]]:
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(self.dataset, range(self.n)),
                                             batch_size=self.batch_size, shuffle=False, num_workers=0)
        start = 0
        for batch in loader:
            yield start, batch
            start += batch["A"].shape[0]

    # -- the evaluation --------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, model: Any) -> dict[str, float]:
        g_ab, g_ba = translators_of(model)
        used = [g for g in (g_ab, g_ba) if g is not None]
        modes = [g.training for g in used]
        for g in used:
            g.eval()
        # every evaluation sees the same random draws (crops, the extractor's init), and the
        # training around it continues with the random state it had
        try:
            with seeded(0):
                return self._evaluate(g_ab, g_ba)
        finally:
            for g, mode in zip(used, modes):
                g.train(mode)

    def _run(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.amp_dtype):
            return net(x).float()

    # g_ba: the B->A module or None, not annotated: mypy would not narrow it through ``both`` below
    def _evaluate(self, g_ab: nn.Module, g_ba) -> dict[str, float]:
        first = self._real is None
        feats: dict[str, list[torch.Tensor]] = {"fake_B": [], "fake_A": [], "real_A": [], "real_B": []}
        both = g_ba is not None
        paired = PAIRED if both else tuple(k for k in PAIRED if k.endswith("a2b"))
        sums = {k: 0.0 for k in (CYCLE if both else ()) + (paired if self.paired else ())}
        self.rows = []
        seen: dict[str, set[str]] = {"A": set(), "B": set()}  # paths
        overlap: dict[str, torch.Tensor] = {}  # "inter" and "union" pixel counts per class (miou_a2b)
        for start, batch in self._batches():
            a = batch["A"].to(self.device, torch.float32)
            b = batch["B"].to(self.device, torch.float32)
            fake_b = self._run(g_ab, a)
            if both:
                fake_a = self._run(g_ba, b)
                rec_a, rec_b = self._run(g_ba, fake_b), self._run(g_ab, fake_a)
                sums["cycle_l1_a"] += float(M.l1(rec_a, a).sum())
                sums["cycle_l1_b"] += float(M.l1(rec_b, b).sum())
            # a domain's images may repeat across items (e.g. the smaller test folder): count each once
            keep = {d: self._new(batch, d, seen[d]) for d in ("A", "B")}
            feats["fake_B"].append(compute_features(self.extractor, _rgb(fake_b[keep["A"]])))
            if both:
                feats["fake_A"].append(compute_features(self.extractor, _rgb(fake_a[keep["B"]])))
            if first:
                feats["real_A"].append(compute_features(self.extractor, _rgb(a[keep["A"]])))
                feats["real_B"].append(compute_features(self.extractor, _rgb(b[keep["B"]])))
            if self.paired:
                self._paired_rows(batch, start, fake_b, b, fake_a if both else None, a, sums)
            if self.segmenter is not None and "A_label" in batch:
                self._overlap(fake_b, batch["A_label"].to(self.device), overlap)
        if self._real is None:  # the first call
            self._real = {d: torch.cat(feats[f"real_{d}"]) for d in ("A", "B")}
        out = {}
        for direction, fake, real in (("a2b", "fake_B", "B"), ("b2a", "fake_A", "A")):
            if not feats[fake]:
                continue  # a one-sided model
            x, y = torch.cat(feats[fake]), self._real[real]
            mean, std = M.kid(x, y, subsets=kid_subsets(len(x), len(y)))
            out[f"kid_{direction}"], out[f"kid_{direction}_std"], out[f"fid_{direction}"] = mean, std, M.fid(x, y)
        if both:
            out["cycle_l1_a"], out["cycle_l1_b"] = sums["cycle_l1_a"] / self.n, sums["cycle_l1_b"] / self.n
        if self.paired:
            out.update({k: sums[k] / self.n for k in paired})
        elif self.truth is not None:
            out.update(self._against_truth(g_ab))
        if overlap:
            present = overlap["union"] > 0
            iou = overlap["inter"] / overlap["union"].clamp(min=1)
            out["miou_a2b"] = float(iou[present].mean())
            out.update({f"iou_a2b_{k}": float(iou[k]) for k in range(len(iou)) if present[k]})
        return out

    def _overlap(self, fake_b: torch.Tensor, labels: torch.Tensor, overlap: dict[str, torch.Tensor]) -> None:
        """Add the segmenter's agreement with ``labels`` on the translations to ``overlap``."""
        with autocast(self.device, self.amp_dtype):
            predicted = self.segmenter(fake_b).float().argmax(1)
        k = max(int(labels.max()) + 1, int(predicted.max()) + 1)
        inter = torch.bincount(labels[predicted == labels].flatten(), minlength=k).double().cpu()
        union = (torch.bincount(labels.flatten(), minlength=k) + torch.bincount(predicted.flatten(), minlength=k)
                 ).double().cpu() - inter
        for name, value in (("inter", inter), ("union", union)):
            old = overlap.get(name, value.new_zeros(0))
            size = max(len(old), len(value))
            overlap[name] = (torch.nn.functional.pad(old, (0, size - len(old)))
                             + torch.nn.functional.pad(value, (0, size - len(value))))

    def _new(self, batch: Mapping[str, Any], domain: str, seen: set[str]) -> torch.Tensor:
        """Mask of the batch's items whose ``domain`` image was not seen before (by path)."""
        paths = batch.get(f"{domain}_path")
        n = batch[domain].shape[0]
        if paths is None:
            return torch.ones(n, dtype=torch.bool)
        mask = []
        for p in paths:
            mask.append(p not in seen)
            seen.add(p)
        return torch.tensor(mask, dtype=torch.bool)

    def _paired_rows(self, batch: Mapping[str, Any], start: int, fake_b: torch.Tensor, b: torch.Tensor,
                     fake_a: torch.Tensor | None, a: torch.Tensor, sums: dict[str, float]) -> None:
        values = {"psnr_a2b": M.psnr(fake_b, b), "ssim_a2b": M.ssim(fake_b, b), "l1_a2b": M.l1(fake_b, b)}
        if fake_a is not None:
            values.update({"psnr_b2a": M.psnr(fake_a, a), "ssim_b2a": M.ssim(fake_a, a), "l1_b2a": M.l1(fake_a, a)})
        names = batch.get("A_path")
        for i in range(a.shape[0]):
            row = {"index": start + i, "name": Path(names[i]).name if names is not None else ""}
            row.update({k: float(v[i]) for k, v in values.items()})
            self.rows.append(row)
        for k, v in values.items():
            sums[k] += float(v.sum())

    def _against_truth(self, g_ab: nn.Module) -> dict[str, float]:
        """PSNR/SSIM/L1 of G_AB(A file) against DIR/<same name> at the truth's resolution."""
        assert self.truth is not None  # _evaluate asks for this only with a --truth folder
        by_stem: dict[str, Path] = {}
        for f in sorted(self.truth.iterdir()):
            if f.suffix.lower() in IMAGE_EXTENSIONS:
                by_stem.setdefault(f.stem, f)
        paths = [self.dataset[i].get("A_path") for i in range(self.n)] if self.n else []
        if not paths or paths[0] is None:
            raise UnpairedError("--truth: this dataset's items carry no A_path, so files cannot be matched by name")
        rows: list[dict[str, Any]] = []
        multiple = size_multiple(g_ab)
        first = self.dataset[0]
        cin, cout = first["A"].shape[0], first["B"].shape[0]
        for index, path in enumerate(dict.fromkeys(paths)):
            truth_file = by_stem.get(Path(path).stem)
            if truth_file is None:
                continue
            truth = to_tensor(load_image(truth_file, channels=cout), cout)
            src = load_image(path, channels=cin)
            if src.size != (truth.shape[2], truth.shape[1]):
                src = src.resize((truth.shape[2], truth.shape[1]), resample=3)
            x, (h, w) = pad_to_multiple(to_tensor(src, cin)[None].to(self.device), multiple)
            y = self._run(g_ab, x)[..., :h, :w].cpu()
            t = truth[None]
            row = {"index": index, "name": Path(path).name, "truth": truth_file.name,
                   "psnr_a2b": float(M.psnr(y, t)[0]), "l1_a2b": float(M.l1(y, t)[0])}
            row["ssim_a2b"] = float(M.ssim(y, t)[0]) if min(h, w) >= 11 else float("nan")
            rows.append(row)
        if not rows:
            raise UnpairedError(f"--truth {self.truth}: no file there is named like an A input "
                                f"(e.g. {Path(paths[0]).stem}.png for {paths[0]})")
        self.rows = rows
        return {k: sum(r[k] for r in rows) / len(rows) for k in ("psnr_a2b", "ssim_a2b", "l1_a2b")}


def translators_of(model: Any) -> tuple[nn.Module, nn.Module | None]:
    """(A->B module, B->A module or None) of an objective or a checkpoint's Translators
    (unpaired.engine.restore): each direction's ``translator(direction)``."""
    from ..engine.objective import translator_of

    # the contract: every objective translates a2b (engine.objective.check_objective_shape)
    return cast("tuple[nn.Module, nn.Module | None]",
                tuple(translator_of(model, d) if d in model.translators else None for d in ("a2b", "b2a")))


def write_rows(rows: Iterable[Mapping[str, object]], path: str | os.PathLike) -> Path:
    """The per-image rows of the last evaluation as CSV."""
    path = Path(path)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with files.atomic_open(path, "w", newline="") as f:  # a temporary name, renamed when complete
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return path


def best_in_metrics_csv(path: str | os.PathLike, metric: str) -> tuple[float, int, float, int] | None:
    """(best value, its step, last value, its step) of ``metric`` in a run's metrics.csv, or
    None when the file or the column is absent or holds no value (lines that are not UTF-8 CSV
    text are left out, with one warning naming the file)."""
    from ..plugins.metrics_csv import read_rows  # the one reader: a damaged line costs a warning

    read = read_rows(Path(path))
    best = last = None
    for r, step in zip(read.rows, read.steps):
        raw = r.get(metric)
        if raw in (None, ""):
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            continue
        if math.isnan(value):
            continue
        last = (value, step)
        if best is None or better(metric, value, best[0]):
            best = (value, step)
    if best is None or last is None:  # last is set whenever best is
        return None
    return best[0], best[1], last[0], last[1]
