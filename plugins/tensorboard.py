"""TensorBoard logging of training: scalars (every ``on_log``), the sample grid (every
``on_sample``) and the resolved recipe, written to ``<out_dir>/tensorboard``.

Active only when the ``tensorboard`` package is installed (``pip install unpaired[tensorboard]``);
without it this module defines no hooks and does nothing. View with
``tensorboard --logdir runs/``. Turn it off in a recipe with ``disable_plugins: [tensorboard]``.

The events are never written through a link: ``<out_dir>/tensorboard`` must not be a
symbolic link, and the writer's events file, once created, is appended to through a
descriptor of ours (``unpaired.open_append``: ``O_NOFOLLOW``, a regular file with one
name) instead of tensorboard's, which opens the file by name for every record.
"""
import importlib.util
import logging

from unpaired.api import hookimpl, open_append, refuse_link

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
        folder = refuse_link(run.out_dir / SUBDIR)
        writer = SummaryWriter(log_dir=str(folder), purge_step=purge)
        try:
            _append_through_our_own_descriptor(writer)
        except BaseException:
            writer.close()
            raise
        run.state[KEY] = writer
        recipe = _recipe_text(run.config)
        if recipe and not run.start_step:
            writer.add_text("recipe", "```yaml\n" + recipe + "```", 0)

    @hookimpl
    def on_log(run, step, metrics) -> None:
        writer = run.state.get(KEY)
        if writer is not None:
            for name, value in metrics.items():
                writer.add_scalar(name, value, step)

    @hookimpl
    def on_sample(run, step, images) -> None:
        writer = run.state.get(KEY)
        if writer is not None and "grid" in images:
            writer.add_image("samples", images["grid"], step, dataformats="CHW")

    @hookimpl
    def on_checkpoint(run, step, path) -> None:
        writer = run.state.get(KEY)
        if writer is not None:
            writer.flush()

    @hookimpl
    def on_train_end(run, step, interrupted) -> None:
        writer = run.state.pop(KEY, None)
        if writer is not None:
            writer.close()


class _WriteThrough:
    """A file that passes each record on at once (as tensorboard's own writer did)."""

    def __init__(self, f) -> None:
        self.f = f

    def write(self, data) -> None:
        self.f.write(data)
        self.f.flush()

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        self.f.close()

    @property
    def closed(self):
        return self.f.closed


def _append_through_our_own_descriptor(writer) -> None:
    """Make ``writer`` (a SummaryWriter) append its records to its events file through one
    descriptor opened by :func:`unpaired.open_append`, not by name at every record: a
    link planted at the file's name later is never written through, and a file that is a link,
    or has another name, is refused now. This reaches into tensorboard's EventFileWriter
    (``_async_writer._writer``: the RecordWriter, whose ``_writer`` is the file); when its
    layout differs, the file is checked once and tensorboard's writer is kept."""
    events = writer._get_file_writer().event_writer
    events.flush()
    name = events._file_name
    async_writer = getattr(events, "_async_writer", None)
    record = getattr(async_writer, "_writer", None)
    lock = getattr(async_writer, "_lock", None)
    if record is None or lock is None or not hasattr(record, "_writer"):
        log.debug("tensorboard's writer has another layout: %s is written by it", name)
        open_append(name, "ab").close()  # the check: no link, a regular file with one name
        return
    own = _WriteThrough(open_append(name, "ab"))
    with lock:
        theirs, record._writer = record._writer, own
        if getattr(events, "_general_file_writer", None) is theirs:
            events._general_file_writer = own
    theirs.close()


def _recipe_text(config):
    """The recipe as YAML (an OmegaConf config or a plain mapping); "" if it is neither."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(config, DictConfig):
        return OmegaConf.to_yaml(config)
    if isinstance(config, dict):
        return OmegaConf.to_yaml(OmegaConf.create(config))
    return ""
