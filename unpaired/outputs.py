"""What a run leaves and shows: metrics.csv, sample grids, the progress display."""
import csv
import time
from pathlib import Path

import torch

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .console import make_console


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


def sample_grid(rows):
    """One image from an objective's sample rows ({"a2b": (real, translated, reconstructed),
    ...}, batches in [0, 1]): a grid row per image of each entry, entries in order."""
    import torchvision

    lines = []
    for row in rows.values():
        for images in zip(*row):
            lines.append([img.expand(3, -1, -1) if img.shape[0] == 1 else img[:3] for img in images])
    width = max(len(line) for line in lines)
    h = max(t.shape[1] for line in lines for t in line)
    w = max(t.shape[2] for line in lines for t in line)
    blank = torch.ones(3, h, w)
    tiles = [torch.nn.functional.pad(t, (0, w - t.shape[2], 0, h - t.shape[1]), value=1.0)
             for line in lines for t in line + [blank] * (width - len(line))]
    return torchvision.utils.make_grid(torch.stack(tiles), nrow=width, padding=2, pad_value=1.0)


def save_png(img, path):
    import torchvision

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    torchvision.utils.save_image(img, tmp, format="png")
    tmp.replace(path)
    return path


class ProgressDisplay:
    """A rich progress bar on a terminal; plain log lines at each logging step otherwise."""

    def __init__(self, console=None):
        self.console = console or make_console(stderr=True)
        self.live = self.console.is_terminal
        self.progress = None
        self.last = {}

    def start(self, total, start, describe):
        self.console.print(describe)
        self.t0, self.start_step = time.perf_counter(), start
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]step"), MofNCompleteColumn(), BarColumn(),
                TextColumn("{task.fields[losses]}"), TextColumn("{task.fields[speed]}"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                console=self.console, transient=False,
            )
            self.task = self.progress.add_task("train", total=total, completed=start, losses="", speed="")
            self.progress.start()

    def update(self, step):
        if self.progress is not None:
            self.progress.update(self.task, completed=step)

    def log(self, step, total, metrics):
        rate = metrics.get("it_per_s", 0.0)
        losses = " ".join(f"{k} {metrics[k]:.3f}" for k in ("g_total", "d_a", "d_b") if k in metrics)
        if self.progress is not None:
            self.progress.update(self.task, completed=step, losses=losses, speed=f"{rate:.2f} it/s")
        else:
            left = (total - step) / rate if rate > 0 else float("nan")
            eta = time.strftime("%H:%M:%S", time.gmtime(left)) if left == left else "?"
            self.console.print(f"step {step}/{total} {losses} {rate:.2f} it/s eta {eta}", highlight=False)

    def note(self, text):
        self.console.print(text)

    def stop(self):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


