"""``OUT_DIR/report.html``, the run report (unpaired/report), refreshed at each checkpoint and
once more at the end of the run, when figure.png exists. The run's last line names it.

The timeline's images of each checkpoint are translated here with the live model (it is that
step's model) and kept for later refreshes; checkpoints of earlier sessions of a resumed run
are loaded once. A report that cannot be written costs a warning, never the run. Disable with
``disable_plugins: [report]`` (``unpaired report RUN_DIR`` writes it at any time)."""
import logging

from unpaired.api import Timeline, held_out_inputs, hookimpl, shown_note, write_report

log = logging.getLogger("unpaired")
KEY = "report"  # run.state[KEY]: the path of the report, once written (for the run's last line)
WRITER = "report_writer"


class ReportWriter:
    def __init__(self, run) -> None:
        self.step = None  # the checkpoint step of the last refresh
        self.figure = False  # whether that refresh showed figure.png
        self.timeline = None
        held_out = run.held_out
        if held_out is not None and len(held_out) > 0:
            note = shown_note(held_out, run.config.data.test_params is not None)
            try:
                inputs = held_out_inputs(held_out, note=note, watch=list(run.config.train.watch))
                self.timeline = Timeline(inputs, run.device, seed=run.config.train.seed)
            except Exception as exc:  # noqa: BLE001 - the run goes on; the report says what it can
                log.warning("report.html: the held-out images cannot be loaded: %s", _first_line(exc))

    def refresh(self, run, step, live) -> None:
        """Rewrite the report; ``live``: the model is that of ``step`` (at its checkpoint)."""
        try:
            if live and self.timeline is not None:
                self.timeline.record(step, run.objective)
            run.state[KEY] = write_report(run.out_dir, timeline=self.timeline)
            self.step, self.figure = step, bool(run.state.get("figure"))
        except Exception as exc:  # noqa: BLE001 - the checkpoint is saved: a report that fails costs a warning
            log.warning("report.html not written: %s: %s", type(exc).__name__, _first_line(exc))


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


@hookimpl
def on_train_start(run) -> None:
    run.state[WRITER] = ReportWriter(run)


@hookimpl
def on_checkpoint(run, step, path) -> None:
    writer = run.state.get(WRITER)
    if writer is not None and writer.step != step:  # latest.pt and step_<N>.pt of one step: one refresh
        writer.refresh(run, step, live=True)


@hookimpl
def on_train_end(run, step, interrupted) -> None:
    """After figure.png (a tryfirst hook), before the progress display's last line (trylast)."""
    writer = run.state.pop(WRITER, None)
    saved = run.checkpoint_step
    if writer is None or saved is None:
        return
    if writer.step != saved or (run.state.get("figure") and not writer.figure):
        writer.refresh(run, saved, live=False)
