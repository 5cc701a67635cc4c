"""``metrics.csv`` in the run directory: one row per logged step. Disable with
``disable_plugins: [metrics_csv]``."""
import csv
from pathlib import Path

from unpaired import hookimpl

KEY = "metrics_csv"


class MetricsCSV:
    """One row per logged step. On resume, rows past the checkpoint's step are dropped
    (they were logged after the last checkpoint and will be logged again)."""

    def __init__(self, path, resume_step=None):
        self.path = Path(path)
        self.fields = None
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="") as f:
                rows = list(csv.DictReader(f))
            if rows:
                self.fields = list(rows[0].keys())
                keep = [r for r in rows if int(r["step"]) <= resume_step]
                self._write(keep, "w")
        elif self.path.exists():
            self.path.unlink()

    def log(self, row):
        if self.fields is None:
            self.fields = list(row)
            self._write([], "w")
        new = [k for k in row if k not in self.fields]
        if new:  # e.g. evaluation metrics: widen the header, keep the rows
            with open(self.path, newline="") as f:
                rows = list(csv.DictReader(f))
            self.fields += new
            self._write(rows, "w")
        self._write([row], "a")

    def _write(self, rows, mode):
        with open(self.path, mode, newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if mode == "w":
                w.writeheader()
            w.writerows(rows)


@hookimpl
def on_train_start(run):
    run.state[KEY] = MetricsCSV(run.out_dir / "metrics.csv", resume_step=run.start_step if run.resumed else None)


@hookimpl
def on_log(run, step, metrics):
    run.state[KEY].log({"step": step, **metrics})
