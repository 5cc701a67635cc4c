"""``metrics.csv`` in the run directory: one row per logged step. Disable with
``disable_plugins: [metrics_csv]``.

The file is never written through a link: at the start of a run it is written anew
(atomically, so a hard link to it elsewhere keeps its old content), and each row is appended
through ``unpaired.open_append`` (``O_NOFOLLOW``; a regular file with one name).

:func:`read_rows` is the one reader of the file (the report's curves, ``unpaired eval``'s best
value, a resumed run): a line that is not UTF-8 text, not a CSV row of the header, or whose
step is not a number is left out and counted, so a damaged file costs a warning, never a
traceback."""
from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from unpaired.api import atomic_open, hookimpl, open_append, refuse_link, write_bytes

log = logging.getLogger("unpaired")

KEY = "metrics_csv"
DAMAGED = ".damaged"  # metrics.csv.damaged: a damaged log, kept as it was when a run resumed


@dataclass
class Rows:
    """What :func:`read_rows` read: the header, the rows that read (``{column: text}``) and
    their steps; ``skipped``: lines left out; ``header_bad``: the first line is no header of
    ours (then every line is left out)."""
    fields: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    skipped: int = 0
    header_bad: bool = False
    raw: bytes = b""

    @property
    def damaged(self):
        return self.header_bad or self.skipped > 0

    def problem(self, path) -> str:
        """What is wrong with the file, for a warning ("" when nothing)."""
        if self.header_bad:
            return (f"{path} is not a metrics log: its first line is not UTF-8 CSV text with a step column "
                    f"({len(self.raw):,} bytes)")
        if self.skipped:
            return (f"{path}: {self.skipped} line(s) are not readable (not UTF-8 text, not CSV rows of its header, "
                    "or without a step) and are left out")
        return ""


def _parse(line):
    """The CSV values of one line (bytes), or None when it is not UTF-8 CSV text."""
    try:
        text = line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None
    try:
        return next(csv.reader([text]), [])
    except csv.Error:  # e.g. a field over the csv module's size limit
        return None


def read_rows(path, warn=True):
    """The rows of the metrics log ``path`` (:class:`Rows`; empty when the file is absent or
    cannot be read). ``warn``: log one warning naming the file when lines were left out."""
    path = Path(path)
    try:
        raw = path.read_bytes() if path.is_file() else b""
    except OSError as exc:
        if warn:
            log.warning("%s cannot be read (%s); no metrics from it", path, exc.strerror or exc)
        return Rows()
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out = Rows(raw=raw)
    header = _parse(lines[0]) if lines else []
    if lines and (header is None or "step" not in header):
        out.header_bad, out.skipped = True, len(lines)
    elif lines:
        out.fields = header
        for line in lines[1:]:
            if not line.strip():
                continue
            values = _parse(line)
            if values is None or len(values) > len(header):
                out.skipped += 1
                continue
            row = dict(zip(header, values))
            try:
                step = int(float(row.get("step") or "nan"))
            except (ValueError, OverflowError):
                out.skipped += 1
                continue
            out.rows.append(row)
            out.steps.append(step)
    if warn and out.damaged:
        log.warning("%s", out.problem(path))
    return out


def aside_name(path):
    """A free name beside ``path`` for its damaged copy: NAME.damaged, NAME.damaged.2, ..."""
    path = Path(path)
    candidate, n = path.with_name(path.name + DAMAGED), 1
    while os.path.lexists(candidate):
        n += 1
        candidate = path.with_name(f"{path.name}{DAMAGED}.{n}")
    return candidate


class MetricsCSV:
    """One row per logged step. On resume, rows past the checkpoint's step are dropped
    (they were logged after the last checkpoint and will be logged again).

    A damaged log on resume (lines that are not UTF-8 CSV text: a disk error, a file written
    over by something else) never stops the run: its bytes are kept as they were in
    ``metrics.csv.damaged`` (nothing unpaired cannot read is destroyed; the user may recover
    it), and metrics.csv goes on with the rows that read, up to the checkpoint's step, so the
    report's curves continue; one warning names both files."""

    def __init__(self, path, resume_step=None) -> None:
        self.path = Path(path)
        self.fields: list[str] | None = None  # the header: set by the first row logged, or the resumed file's
        refuse_link(self.path)
        if resume_step is not None and self.path.is_file():
            self._resume(resume_step)
        elif os.path.lexists(self.path):
            self.path.unlink()

    def _resume(self, resume_step) -> None:
        read = read_rows(self.path, warn=False)
        keep = [row for row, step in zip(read.rows, read.steps) if step <= resume_step]
        if read.damaged:
            aside = aside_name(self.path)
            write_bytes(aside, read.raw)
            log.warning("%s; the file as it was is kept as %s, and %s goes on with its %d readable row(s) up to "
                        "step %d", read.problem(self.path), aside, self.path.name, len(keep), resume_step)
        if read.fields:
            self.fields = list(read.fields)
            self._rewrite(keep)  # a new file of this run's: a hard link to the old one keeps its content
        else:  # nothing readable: the first row logged starts a new file
            self.path.unlink(missing_ok=True)

    def log(self, row) -> None:
        if self.fields is None:
            self.fields = list(row)
            self._rewrite([])
        new = [k for k in row if k not in self.fields]
        if new:  # e.g. evaluation metrics: widen the header, keep the rows
            rows = read_rows(self.path).rows
            self.fields += new
            self._rewrite(rows)
        self._append([row])

    def _rewrite(self, rows) -> None:
        """The header and ``rows``, written atomically (a new file: never through a link)."""
        with atomic_open(self.path, "w", newline="", encoding="utf-8") as f:
            writer = self._writer(f)
            writer.writeheader()
            writer.writerows(rows)

    def _append(self, rows) -> None:
        with open_append(self.path, "a", newline="", encoding="utf-8") as f:
            self._writer(f).writerows(rows)

    def _writer(self, f):
        assert self.fields is not None  # _resume() and log() set the header before they write
        return csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")


@hookimpl
def on_train_start(run) -> None:
    run.state[KEY] = MetricsCSV(run.out_dir / "metrics.csv", resume_step=run.start_step if run.resumed else None)


@hookimpl
def on_log(run, step, metrics) -> None:
    run.state[KEY].log({"step": step, **metrics})
