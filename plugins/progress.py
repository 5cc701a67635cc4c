"""The progress display: a rich progress bar (step, losses, it/s, ETA) on a terminal, plain
log lines otherwise. Disable with ``disable_plugins: [progress]``."""
from unpaired import hookimpl
from unpaired.outputs import ProgressDisplay

KEY = "progress"


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


@hookimpl
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
    if interrupted:
        resume = "; continue with --resume" if saved is not None else ""
        display.note(f"stopped by {interrupted} at step {step}; {on_disk}{resume}")
    elif saved != step:
        display.note(f"stopped at step {step}; {on_disk}")
    elif step >= run.total_steps:
        figure = run.state.get("figure")  # the end-of-run figure plugin's, when it ran
        shown = f"; the result: {figure}" if figure else ""
        display.note(f"done: step {step}; checkpoint {ckpt}; samples in {run.out_dir / 'samples'}{shown}")
