"""What the report plots, read from a run's metrics.csv: each phase's loss (``loss_<phase>``,
what the phase's optimizer was given), the objective's terms and anything else logged
(an augmentation's probability, say), the schedule and speed (``lr``, ``it_per_s``) and the
evaluation metrics (KID, FID, cycle error, paired metrics) on the steps where they ran.
The core knows these roles, not the objectives' term names."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..evaluation.evaluate import METRICS as EVAL_METRICS
from .svg import Series

PHASE_PREFIX = "loss_"
SCHEDULE = ("lr", "it_per_s")
NOT_CHARTED = ("step", "epoch")
# chart titles of the evaluation metrics (unpaired.evaluation.evaluate.METRICS), by prefix
EVAL_GROUPS = (("KID (lower is better)", "kid_"), ("FID (lower is better)", "fid_"),
               ("cycle L1 of held-out images, unweighted (lower is better)", "cycle_l1_"),
               ("PSNR against the truth (higher is better)", "psnr_"),
               ("SSIM against the truth (higher is better)", "ssim_"),
               ("L1 against the truth (lower is better)", "l1_"))


@dataclass
class Curves:
    """The columns of metrics.csv as series, sorted into the report's sections."""
    phases: list = field(default_factory=list)  # [Series]
    terms: list = field(default_factory=list)
    schedule: list = field(default_factory=list)
    evaluation: list = field(default_factory=list)  # [(group title, [Series])]
    eval_rows: list = field(default_factory=list)  # [(step, {metric: value})]

    @property
    def empty(self) -> bool:
        return not (self.phases or self.terms or self.schedule or self.evaluation)


def read_columns(path: str | os.PathLike) -> dict[str, tuple[list[int], list[float]]]:
    """{column: (steps, values)} of metrics.csv, each column's empty and unreadable cells left out (and
    its lines that are not UTF-8 CSV text, with one warning naming the file)."""
    from ..plugins.metrics_csv import read_rows  # the one reader: a damaged line costs a warning

    read = read_rows(Path(path))
    columns: dict[str, tuple[list[int], list[float]]] = {}  # column -> (steps, values)
    for row, step in zip(read.rows, read.steps):
        for key, raw in row.items():
            if key is None or key == "step" or raw in (None, ""):
                continue
            try:
                value = float(raw)
            except ValueError:
                continue
            steps, values = columns.setdefault(key, ([], []))
            steps.append(step)
            values.append(value)
    return columns


def curves(path: str | os.PathLike) -> Curves:
    """The run's metrics.csv sorted into :class:`Curves`."""
    columns = read_columns(path)
    out = Curves()
    for name, (steps, values) in columns.items():
        series = Series(name, steps, values)
        if name in NOT_CHARTED or name in EVAL_METRICS:
            continue
        if name.startswith(PHASE_PREFIX):
            out.phases.append(series)
        elif name in SCHEDULE:
            out.schedule.append(series)
        else:
            out.terms.append(series)
    for title, prefix in EVAL_GROUPS:
        group = [Series(name, *columns[name]) for name in EVAL_METRICS
                 if name.startswith(prefix) and not name.endswith("_std") and name in columns]
        if group:
            out.evaluation.append((title, group))
    by_step: dict[int, dict[str, float]] = {}  # step -> {metric: value}
    for name in EVAL_METRICS:
        for step, value in zip(*columns.get(name, ((), ()))):
            if math.isfinite(value):
                by_step.setdefault(step, {})[name] = value
    out.eval_rows = sorted(by_step.items())
    return out
