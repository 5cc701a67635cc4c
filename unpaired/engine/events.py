"""Training events: what the trainer tells plugins (progress, logs, samples, checkpoints).

The hook specifications (on_train_start, on_step, on_log, on_sample, on_checkpoint,
on_train_end) live in unpaired.hookspecs; here is the ``run`` object they receive and the
caller that leaves out the plugins a recipe disables (``disable_plugins``).
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..errors import UnpairedError
from ..loading import plugin_manager

if TYPE_CHECKING:
    from ..hookspecs import Run

EVENTS = ("on_train_start", "on_step", "on_log", "on_sample", "on_checkpoint", "on_train_end")


@dataclass
class RunInfo:
    config: Any  # the resolved recipe (OmegaConf DictConfig)
    out_dir: Path
    start_step: int  # 0, or the step a resumed run starts from
    total_steps: int
    device: Any  # torch.device
    objective: Any  # the objective (unpaired.engine.objective): networks(), translators, translator(d), samples(a, b)
    description: str = ""  # one line saying what trains, for displays
    state: dict = field(default_factory=dict)  # plugins' per-run objects, keyed by plugin name
    checkpoint_step: Any = None  # the step of the checkpoint now on disk (None: none written)
    held_out: Any = None  # the dataset sample grids come from (held-out images, else training images)

    @property
    def resumed(self) -> bool:
        return self.start_step > 0

    @property
    def model(self) -> Any:
        """The objective (its name before 0.2)."""
        return self.objective


if TYPE_CHECKING:
    def _is_a_run(run: RunInfo) -> Run:
        """For the type checker: a RunInfo is what the event hooks declare (unpaired.hookspecs.Run)."""
        return run


class Events:
    """``events.on_log(run=..., step=..., metrics=...)`` calls every enabled plugin's hook."""

    # one caller per event, set by __init__ (pluggy's hook callers: keyword arguments, a list of results)
    on_train_start: Callable[..., list[Any]]
    on_step: Callable[..., list[Any]]
    on_log: Callable[..., list[Any]]
    on_sample: Callable[..., list[Any]]
    on_checkpoint: Callable[..., list[Any]]
    on_train_end: Callable[..., list[Any]]

    def __init__(self, disabled: Iterable[str] | None = ()) -> None:
        """``disabled=None``: no plugin hears anything (ranks other than 0)."""
        if disabled is None:
            for event in EVENTS:
                setattr(self, event, _silent)
            return
        pm = plugin_manager()
        names = [pm.get_name(p) for p in pm.get_plugins()]
        remove = []
        for wanted in disabled:
            matches = [n for n in names if n == wanted or n.rsplit(".", 1)[-1] == wanted]
            if not matches:
                short = sorted({n.rsplit(".", 1)[-1] for n in names})
                raise UnpairedError(f"disable_plugins: no plugin {wanted!r}; plugins are {', '.join(short)}")
            remove += [pm.get_plugin(n) for n in matches]
        for event in EVENTS:
            caller = pm.subset_hook_caller(event, remove) if remove else getattr(pm.hook, event)
            setattr(self, event, caller)


def _silent(**kwargs: Any) -> list[Any]:
    return []
