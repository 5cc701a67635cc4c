"""The progress display: a rich progress bar (step, losses, it/s, ETA) on a terminal, plain
log lines otherwise. Disable with ``disable_plugins: [progress]``."""
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from unpaired import hookimpl
from unpaired.console import make_console

KEY = "progress"


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


@hookimpl
def on_train_start(run):
    display = run.state[KEY] = ProgressDisplay()
    display.start(run.total_steps, run.start_step, run.description)


@hookimpl
def on_step(run, step):
    run.state[KEY].update(step)


@hookimpl
def on_log(run, step, metrics):
    run.state[KEY].log(step, run.total_steps, metrics)


@hookimpl(trylast=True)  # the last line, after figure.png and report.html are written
def on_train_end(run, step, interrupted):
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
