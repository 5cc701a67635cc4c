"""TensorBoard logging of training: scalars (every ``on_log``), the sample grid (every
``on_sample``) and the resolved recipe, written to ``<out_dir>/tensorboard``.

Active only when the ``tensorboard`` package is installed (``pip install unpaired[tensorboard]``);
without it this module defines no hooks and does nothing. View with
``tensorboard --logdir runs/``. Turn it off in a recipe with ``disable_plugins: [tensorboard]``.
"""
import importlib.util
import logging

from unpaired import hookimpl

log = logging.getLogger("unpaired.tensorboard")

AVAILABLE = importlib.util.find_spec("tensorboard") is not None
SUBDIR = "tensorboard"

KEY = __name__  # run.state[KEY]: the SummaryWriter of the run in progress

if AVAILABLE:

    @hookimpl
    def on_train_start(run):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # installed but broken (e.g. a protobuf mismatch): train without it
            log.warning("tensorboard logging is off: %s", exc)
            return
        # purge_step: on resume after step S, drop the events a killed run logged after S
        purge = run.start_step + 1 if run.start_step else None
        writer = SummaryWriter(log_dir=str(run.out_dir / SUBDIR), purge_step=purge)
        run.state[KEY] = writer
        recipe = _recipe_text(run.config)
        if recipe and not run.start_step:
            writer.add_text("recipe", "```yaml\n" + recipe + "```", 0)

    @hookimpl
    def on_log(run, step, metrics):
        writer = run.state.get(KEY)
        if writer is not None:
            for name, value in metrics.items():
                writer.add_scalar(name, value, step)

    @hookimpl
    def on_sample(run, step, images):
        writer = run.state.get(KEY)
        if writer is not None and "grid" in images:
            writer.add_image("samples", images["grid"], step, dataformats="CHW")

    @hookimpl
    def on_checkpoint(run, step, path):
        writer = run.state.get(KEY)
        if writer is not None:
            writer.flush()

    @hookimpl
    def on_train_end(run, step, interrupted):
        writer = run.state.pop(KEY, None)
        if writer is not None:
            writer.close()


def _recipe_text(config):
    """The recipe as YAML (an OmegaConf config or a plain mapping); "" if it is neither."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(config, DictConfig):
        return OmegaConf.to_yaml(config)
    if isinstance(config, dict):
        return OmegaConf.to_yaml(OmegaConf.create(config))
    return ""
