"""From a checkpoint back to what it holds: its recipe, its generators, its resumable state.
``translate``, ``eval``, ``export`` and ``--resume`` all come through here.

A checkpoint is data: the plugin files its recipe names are never imported from here (that
would run code from a downloaded file). When a network's plugin is not installed, the error
names the plugin and the version training used; a plugin file is loaded only when the user
names it (``--plugins FILE``, ``unpaired.load_plugin_file``).
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf
from torch import nn

from . import checkpoint
from .config import from_container
from .errors import UnpairedError
from .loading import get_registry, load_plugin_file
from .objective import Parts

DIRECTIONS = ("a2b", "b2a")


def checkpoint_path(run_or_checkpoint, step=None):
    """The checkpoint file to open: a checkpoint file as given; a run directory's
    checkpoints/latest.pt, or with ``step`` the checkpoint ``train.keep_every`` kept of that
    step (checkpoints/step_<N>.pt; latest.pt when it holds that step). An unknown step is an
    error naming the run and listing the steps it keeps."""
    if step is None:
        return checkpoint.resolve(run_or_checkpoint)
    run = Path(run_or_checkpoint)
    if not run.exists():
        raise UnpairedError(f"run directory {run} does not exist")
    if not run.is_dir():
        raise UnpairedError(f"--step {step}: {run} is a file; a step names one of a run directory's kept "
                            "checkpoints (RUN_DIR/checkpoints/step_<N>.pt): give the run directory")
    folder = run / "checkpoints" if (run / "checkpoints").is_dir() else run
    kept = checkpoint.kept_steps(folder)
    if step in kept:
        return kept[step]
    latest = folder / "latest.pt"
    latest_step = checkpoint.peek_step(latest) if latest.is_file() else None
    if latest_step == step:
        return latest
    raise UnpairedError(unknown_step(run, step, kept, latest_step))


def unknown_step(run, step, kept, latest_step):
    """The message for a step that ``run`` keeps no checkpoint of."""
    if kept:
        listed = f"it keeps steps {', '.join(map(str, kept))} (checkpoints/step_<N>.pt)"
    else:
        listed = "it keeps no step checkpoints (train with train.keep_every=N to keep checkpoints/step_<N>.pt)"
    latest = f", and checkpoints/latest.pt holds step {latest_step}" if latest_step is not None else ""
    return f"run {run} has no checkpoint of step {step}: {listed}{latest}"


def open_checkpoint(path_or_state, path=None, plugins=(), step=None):
    """(state in today's format, its path for messages, its recipe) of a checkpoint file, a
    run directory (its checkpoints/latest.pt, or with ``step`` its kept checkpoint of that
    step: :func:`checkpoint_path`) or a state already loaded. ``plugins``: plugin files the
    user named (``--plugins``), loaded first: the only way a file's code runs here."""
    for file in plugins:
        load_plugin_file(file)
    if isinstance(path_or_state, dict):
        state, path = checkpoint.upgrade(path_or_state), path or "(in memory)"
    else:
        path = checkpoint_path(path_or_state, step)
        state = checkpoint.load(path)
    return state, path, checkpoint_recipe(state, path)


def checkpoint_recipe(state, path=""):
    """The recipe a checkpoint was trained with (a validated DictConfig; ``${oc.env:...}``
    as written, unresolved)."""
    if not isinstance(state.get("config"), dict):
        raise UnpairedError(f"checkpoint {path} holds no recipe ('config'); it was not written by unpaired")
    return from_container(state["config"])


def require_plugin(registry, state, role, kind, name, path):
    """An error naming the plugin (and the version used in training) when ``name`` is not
    registered now."""
    if name in registry.names(kind):
        return
    used = (state.get("plugins") or {}).get(role) or {}
    origin = ""
    if used:
        source = used.get("source", "")
        if source == "entry point":
            origin = (f"; it was trained with {kind} {name!r} from plugin {used.get('plugin')!r} of "
                      f"{used.get('dist')} {used.get('version')}: install it (pip install "
                      f"'{used.get('dist')}=={used.get('version')}')")
        elif source == "file":
            origin = (f"; it was trained with {kind} {name!r} from the plugin file {used.get('location')}: "
                      f"if you trust that file, load it with --plugins {used.get('location')} "
                      f"(plugin files run Python; a checkpoint never loads one by itself)")
        else:
            origin = (f"; it was trained with {kind} {name!r} from plugin {used.get('plugin')!r} "
                      f"({source or 'unknown source'}, version {used.get('version') or 'unrecorded'}, "
                      f"dist {used.get('dist') or '-'}): install or register that plugin")
    installed = ", ".join(registry.names(kind)) or "none"
    raise UnpairedError(f"checkpoint {path}: {kind} {name!r} is not installed{origin}. Installed {kind}s: {installed}.")


class GeneratorPair(nn.Module):
    """The translating generators of a checkpoint: what inference and evaluation need
    (``g_ab``, and ``g_ba`` or None for a one-sided objective), without the rest."""

    def __init__(self, g_ab, g_ba):
        super().__init__()
        self.g_ab, self.g_ba = g_ab, g_ba

    @property
    def translators(self):
        """{direction: network name}, as an objective has it."""
        return {d: "g_" + d.replace("2", "") for d, g in (("a2b", self.g_ab), ("b2a", self.g_ba)) if g is not None}

    def networks(self):
        return {name: getattr(self, name) for name in self.translators.values()}


def _channels(record, path):
    """(in, out) channels of a translator record, checked."""
    ch = (record.get("in_channels"), record.get("out_channels")) if isinstance(record, dict) else None
    if not (ch and all(isinstance(c, int) and 0 < c <= 64 for c in ch)):
        raise UnpairedError(f"checkpoint {path}: translator {record!r} does not name two channel counts")
    return ch


def load_generators(path_or_state, directions=None, registry=None, path=None, plugins=(), step=None):
    """(GeneratorPair with the checkpoint's weights, eval mode, on the CPU; the state). Only the
    generators named in ``directions`` are built (the other is None); None: every direction
    the checkpoint's objective translates (a one-sided objective such as CUT has only a2b).
    The generators are built as training built them (``objective.Parts``); ``plugins`` and
    ``step`` as for :func:`open_checkpoint`."""
    state, path, cfg = open_checkpoint(path_or_state, path, plugins, step)
    checkpoint.require(state, path, "nets", "translators")
    translators = state["translators"]
    directions = tuple(translators) if directions is None else tuple(directions)
    for direction in directions:
        if direction not in translators:
            raise UnpairedError(
                f"--direction {direction}: checkpoint {path} was trained with objective "
                f"{state.get('objective', '?')!r}, which is one-sided: it translates "
                f"{' and '.join(translators) or 'nothing'} only")
    registry = registry or get_registry()
    name = cfg.generator.name
    require_plugin(registry, state, "generator", "generator", name, path)
    parts = Parts(cfg, registry, state.get("channels", (3, 3)), state.get("objective", "?"))
    nets = dict.fromkeys(("g_ab", "g_ba"))
    for direction in directions:
        record = translators[direction]
        net = parts.generator(*_channels(record, path))
        try:
            net.load_state_dict(state["nets"][record["net"]])
        except (KeyError, RuntimeError) as exc:
            params = OmegaConf.to_container(cfg.generator.params, resolve=True)
            raise UnpairedError(f"checkpoint {path}: the weights of {record['net']} do not fit generator {name!r} "
                                f"with params {params} ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
        nets["g_" + direction.replace("2", "")] = net.eval()
    return GeneratorPair(nets["g_ab"], nets["g_ba"]), state


def resumable_state(path, cfg):
    """The checkpoint ``--resume`` continues from, checked against the recipe: the objective
    and the networks must be the ones it was trained with (the rest may change, e.g. a longer
    schedule)."""
    state = checkpoint.require(checkpoint.load(path), path, "config", "nets", "step")
    old = from_container(state["config"])  # the schema's defaults for keys older versions lacked
    for key in ("objective", "generator", "discriminator"):
        before, now = OmegaConf.to_container(old[key]), OmegaConf.to_container(cfg[key])
        if before != now:
            raise UnpairedError(f"--resume: {key} was {before} in {path}, the recipe now says {now}; "
                                "the networks would not match. Use the recipe of that run, or a new out_dir")
    return state
