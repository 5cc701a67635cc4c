"""``metrics.csv`` in the run directory: one row per logged step. Disable with
``disable_plugins: [metrics_csv]``."""
from unpaired import hookimpl
from unpaired.outputs import MetricsCSV

KEY = "metrics_csv"


@hookimpl
def on_train_start(run):
    run.state[KEY] = MetricsCSV(run.out_dir / "metrics.csv", resume_step=run.start_step if run.resumed else None)


@hookimpl
def on_log(run, step, metrics):
    run.state[KEY].log({"step": step, **metrics})
