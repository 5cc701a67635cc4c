"""The progress display: a rich progress bar (step, losses, it/s, ETA) on a terminal, plain
log lines otherwise. Disable with ``disable_plugins: [progress]``.

The speed and the ETA come from :class:`SmoothedRate`: an average of the logged windows' speeds
weighted by how long each took, with older windows fading over a few minutes, so a step slowed by
another process for a moment moves the ETA by a little, not from 23 minutes to 2.5 hours.
"""
import math
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from unpaired.api import hookimpl, make_console, shell_command

KEY = "progress"


class SmoothedRate:
    """Steps per second, averaged over the time since the run started with a fading memory:
    a window of ``dt`` seconds at ``rate`` counts with weight ``1 - exp(-dt / horizon)``. The
    first window (compile, first allocations, data warm-up) is skipped once a second exists."""

    def __init__(self, horizon=180.0) -> None:
        self.horizon = horizon
        self.value = None
        self.windows = 0

    def add(self, rate, seconds):
        if not (rate > 0 and math.isfinite(rate)):
            return self.value
        self.windows += 1
        if self.value is None or self.windows == 2:  # the second window replaces the warm-up one
            self.value = rate
        else:
            w = 1.0 - math.exp(-max(seconds, 0.0) / self.horizon)
            self.value += w * (rate - self.value)
        return self.value

    def eta(self, steps_left) -> str:
        """'H:MM:SS' left at the smoothed rate, or '?' before there is one."""
        if not self.value:
            return "?"
        left = int(round(steps_left / self.value))
        return f"{left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d}"


class ProgressDisplay:
    """A rich progress bar on a terminal; plain log lines at each logging step otherwise."""

    def __init__(self, console=None) -> None:
        self.console = console or make_console(stderr=True)
        self.live = self.console.is_terminal
        self.progress: Progress | None = None
        self.rate = SmoothedRate()
        self.last_log: float | None = None

    def start(self, total, start, describe) -> None:
        self.console.print(describe)
        self.t0, self.start_step = time.perf_counter(), start
        if self.live:
            self.progress = Progress(
                TextColumn("step", style="bold"), MofNCompleteColumn(), BarColumn(),
                TextColumn("{task.fields[losses]}"), TextColumn("{task.fields[speed]}"),
                TimeElapsedColumn(), TextColumn("eta {task.fields[eta]}"),
                console=self.console, transient=False,
            )
            self.task = self.progress.add_task("train", total=total, completed=start, losses="", speed="", eta="?")
            self.progress.start()

    def update(self, step) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step)

    def log(self, step, total, metrics) -> None:
        now = time.perf_counter()
        since = self.t0 if self.last_log is None else self.last_log
        self.last_log = now
        rate = self.rate.add(metrics.get("it_per_s", 0.0), now - since) or 0.0
        eta = self.rate.eta(total - step)
        losses = " ".join(f"{k[5:]} {v:.3f}" for k, v in metrics.items() if k.startswith("loss_"))  # each phase's
        if "ada_p" in metrics:  # the built-in ada's augmentation probability
            losses += f" p {metrics['ada_p']:.2f}"
        if self.progress is not None:
            self.progress.update(self.task, completed=step, losses=losses, speed=f"{rate:.2f} it/s", eta=eta)
        else:
            self.console.print(f"step {step}/{total} {losses} {rate:.2f} it/s eta {eta}", highlight=False)

    def note(self, text) -> None:
        self.console.print(text)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


@hookimpl
def on_train_start(run) -> None:
    display = run.state[KEY] = ProgressDisplay()
    display.start(run.total_steps, run.start_step, run.description)


@hookimpl
def on_step(run, step) -> None:
    run.state[KEY].update(step)


@hookimpl
def on_log(run, step, metrics) -> None:
    run.state[KEY].log(step, run.total_steps, metrics)


@hookimpl(trylast=True)  # the last line, after figure.png and report.html are written
def on_train_end(run, step, interrupted) -> None:
    display = run.state.pop(KEY, None)
    if display is None:
        return
    display.stop()
    ckpt = run.out_dir / "checkpoints" / "latest.pt"
    saved = getattr(run, "checkpoint_step", step)
    if saved is None:
        on_disk = "no checkpoint was written"
    elif saved != step:
        on_disk = f"the checkpoint of step {step} was NOT written; {ckpt} holds step {saved}"
    else:
        on_disk = f"checkpoint {ckpt}"
    report = run.state.get("report")  # the report plugin's report.html, when it wrote one
    seen = f"; the report: {report}" if report else ""
    if interrupted:
        resume = "; continue with --resume" if saved is not None else ""
        display.note(f"stopped by {interrupted} at step {step}; {on_disk}{resume}{seen}")
    elif saved != step:
        display.note(f"stopped at step {step}; {on_disk}{seen}")
    elif step >= run.total_steps:
        figure = run.state.get("figure")  # the end-of-run figure plugin's, when it ran
        shown = f"; the result: {figure}" if figure else ""
        display.note(f"done: step {step}; checkpoint {ckpt}; samples in {run.out_dir / 'samples'}{shown}{seen}")
        for line in next_steps(run.out_dir, step, bool(report)):
            display.note(line)


def next_steps(out_dir, step, has_report):
    """What to do next, as commands to copy: translate one's own photos, look at the results,
    train longer (the run's config.yaml is its resolved recipe: --resume continues in its folder)."""
    out = str(out_dir)
    translate = shell_command("unpaired", "translate", out, "PHOTOS/", "--out", "translated/")
    lines = ["next:", f"  translate your own images:  {translate}",
             f"  a page to try images on:    {shell_command('unpaired', 'serve', out)}"]
    if has_report:
        lines.append(f"  the report, in a browser:   {shell_command(str(Path(out) / 'report.html'))}")
    longer = shell_command("unpaired", "run", str(Path(out) / "config.yaml"), "--resume", f"train.max_steps={step * 4}")
    lines.append(f"  train longer:               {longer}")
    return lines
