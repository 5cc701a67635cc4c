"""From a checkpoint back to what it holds: its recipe, its generators, its resumable state.
``translate``, ``eval``, ``export`` and ``--resume`` all come through here.

A checkpoint is data: the plugin files its recipe names are never imported from here (that
would run code from a downloaded file). When a network's plugin is not installed, the error
names the plugin and the version training used; a plugin file is loaded only when the user
names it (``--plugins FILE``, ``unpaired.load_plugin_file``).
"""
from __future__ import annotations

from pathlib import Path
from typing import cast

from omegaconf import OmegaConf
import torch
from torch import nn

from ..store import checkpoint
from ..recipe.config import from_container
from ..console import shell_command
from ..errors import UnpairedError
from ..loading import get_registry, load_plugin_file
from .objective import DIRECTIONS  # noqa: F401  (re-exported: unpaired.inference imports it here)


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


def unknown_step(run, step, kept, latest_step) -> str:
    """The message for a step that ``run`` keeps no checkpoint of."""
    if kept:
        listed = f"it keeps steps {', '.join(map(str, kept))} (checkpoints/step_<N>.pt)"
    else:
        listed = "it keeps no step checkpoints (train with train.keep_every=N to keep checkpoints/step_<N>.pt)"
    latest = f", and checkpoints/latest.pt holds step {latest_step}" if latest_step is not None else ""
    return f"run {run} has no checkpoint of step {step}: {listed}{latest}"


def open_checkpoint(path_or_state, path=None, plugins=(), step=None, raw=False):
    """(state in today's format, its path for messages, its recipe) of a checkpoint file, a
    run directory (its checkpoints/latest.pt, or with ``step`` its kept checkpoint of that
    step: :func:`checkpoint_path`) or a state already loaded. ``plugins``: plugin files the
    user named (``--plugins``), loaded first: the only way a file's code runs here. The
    state's ``nets`` hold the averaged generator's weights where it has one (``train.ema``),
    the trained ones with ``raw`` (``--raw``); its ``weights`` says which
    (unpaired.store.format.chosen_weights)."""
    for file in plugins:
        load_plugin_file(file)
    if isinstance(path_or_state, dict):
        state, path = checkpoint.upgrade(path_or_state), path or "(in memory)"
    else:
        path = checkpoint_path(path_or_state, step)
        state = checkpoint.load(path)
    if "averaged" in state:
        checkpoint.validate(state, path)
    state = checkpoint.chosen_weights(state, raw)
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
            install = shell_command("pip", "install", f"{used.get('dist')}=={used.get('version')}")
            origin = (f"; it was trained with {kind} {name!r} from plugin {used.get('plugin')!r} of "
                      f"{used.get('dist')!r} {used.get('version')!r}: install it ({install})")
        elif source == "file":
            origin = (f"; it was trained with {kind} {name!r} from the plugin file {used.get('location')!r}: "
                      f"if you trust that file, load it with {shell_command('--plugins', used.get('location'))} "
                      f"(plugin files run Python; a checkpoint never loads one by itself)")
        else:
            origin = (f"; it was trained with {kind} {name!r} from plugin {used.get('plugin')!r} "
                      f"({source or 'unknown source'}, version {used.get('version') or 'unrecorded'}, "
                      f"dist {used.get('dist') or '-'}): install or register that plugin")
    installed = ", ".join(registry.names(kind)) or "none"
    raise UnpairedError(f"checkpoint {path}: {kind} {name!r} is not installed{origin}. Installed {kind}s: {installed}.")


class Translators(nn.Module):
    """The translating modules of a checkpoint, one per direction it was trained for: what
    inference and evaluation need (``translators`` lists the directions; ``translator(d)`` gives
    a module; ``translated["a2b"]`` too). Built by the checkpoint's own objective, so a
    translation that is a procedure over several networks comes back as one module."""

    def __init__(self, modules: dict, names: dict) -> None:
        super().__init__()
        self.modules_by_direction = nn.ModuleDict(modules)
        self.translators = dict(names)  # {direction: network name}, as an objective has it

    def translator(self, direction: str) -> nn.Module:
        return self.modules_by_direction[direction]

    def __getitem__(self, direction: str) -> nn.Module:
        return self.modules_by_direction[direction]

    def networks(self):
        return {self.translators[d]: m for d, m in self.modules_by_direction.items()}

    # the names a CycleGAN checkpoint's generators had before 0.2
    g_ab = property(lambda self: self.modules_by_direction["a2b"] if "a2b" in self.modules_by_direction else None)
    g_ba = property(lambda self: self.modules_by_direction["b2a"] if "b2a" in self.modules_by_direction else None)


GeneratorPair = Translators  # its name before 0.2


def load_translators(path_or_state, directions=None, registry=None, path=None, plugins=(), key="--direction",
                     step=None, raw=False):
    """(Translators with the checkpoint's weights, eval mode, on the CPU; the state). Only the
    directions in ``directions`` are kept; None: every direction the checkpoint's objective
    translates (a one-sided objective such as CUT has only a2b). The objective is assembled as
    training assembled it (unpaired.engine.assemble, for inference: nothing initialised, discriminators
    on the meta device), its networks get the checkpoint's weights, and each direction's module
    is the objective's ``translator(direction)``. ``plugins`` and ``step`` as for
    :func:`open_checkpoint`; ``key``: what errors call the direction (the flag, or the Python
    argument ``direction``); ``raw``: the trained weights, not the averaged generator's.
    A state already opened keeps the weights it was opened with."""
    from .assemble import assemble

    state, path, cfg = open_checkpoint(path_or_state, path, plugins, step, raw)
    checkpoint.validate(state, path)  # the format's checks (unpaired.store.format)
    translators = state["translators"]
    directions = tuple(translators) if directions is None else tuple(directions)
    for direction in directions:
        if direction not in translators:
            raise UnpairedError(
                f"{_as_given(key, direction)}: checkpoint {path} was trained with objective "
                f"{state.get('objective', '?')!r}, which is one-sided: it translates "
                f"{' and '.join(translators) or 'nothing'} only")
    registry = registry or get_registry()
    require_plugin(registry, state, "objective", "objective", cfg.objective.name, path)
    require_plugin(registry, state, "generator", "generator", cfg.generator.name, path)
    channels = checkpoint.channels(translators["a2b"], path)
    assembly = assemble(cfg, registry, channels, purpose="inference", warn=False)
    nets = assembly.objective.networks()
    for direction in directions:
        if translators[direction].get("net") not in state["nets"]:
            raise UnpairedError(f"checkpoint {path}: the {direction} translator's network "
                                f"{translators[direction].get('net')!r} has no weights in it: it is damaged")
    for name, net in nets.items():
        if name not in state["nets"] or assembly.kind_of(net) == "discriminator":
            continue  # discriminators never run here (built on the meta device); a network added since
        try:
            net.load_state_dict(state["nets"][name])
        except (KeyError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
            kind = assembly.kind_of(net)
            what = (f"{kind} {cfg[kind].name!r} with params {OmegaConf.to_container(cfg[kind].params, resolve=True)}"
                    if kind else f"the network objective {cfg.objective.name!r} builds")
            raise UnpairedError(f"checkpoint {path}: the weights of {name} do not fit {what} "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
        _require_finite(net, name, path)
    modules = {d: assembly.translator(d).eval() for d in directions}
    return Translators(modules, {d: translators[d]["net"] for d in directions}), state


def _require_finite(net, name, path):
    """Refuse weights holding NaN or infinities (training never saves such weights: the file was
    damaged or edited); they would translate every image to a flat colour with no error."""
    for key, value in net.state_dict().items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise UnpairedError(f"checkpoint {path}: the weights of {name} hold NaN or infinite values ({key}: {bad:,} "
                                f"of {value.numel():,}); training never saves such weights, so the file is damaged "
                                "or was edited: use another checkpoint (checkpoints/step_N.pt, best.pt)")


def load_generators(path_or_state, directions=None, registry=None, path=None, plugins=(), key="--direction",
                    step=None):
    """:func:`load_translators` (its name before 0.2)."""
    return load_translators(path_or_state, directions, registry, path, plugins, key, step)


def _as_given(key, value):
    """``--direction b2a`` for a flag, ``direction='b2a'`` for a Python argument."""
    return f"{key} {value}" if key.startswith("-") else f"{key}={value!r}"


def resumable_state(path, cfg, registry=None):
    """The checkpoint ``--resume`` continues from, checked against the recipe: the objective
    and the networks must be the ones it was trained with, their params compared with the
    factories' defaults filled in (the rest may change, e.g. a longer schedule)."""
    state = checkpoint.require(checkpoint.load(path), path, "config", "nets", "step")
    step = state["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise UnpairedError(f"--resume: {path} holds step {step!r}, not a step count; it is damaged or was not "
                            "written by unpaired")
    if "rng" in state:
        checkpoint.check_rng_state(state["rng"], f"--resume: {path}")
    old = from_container(state["config"])  # the schema's defaults for keys older versions lacked
    registry = registry or get_registry()
    for key, kind in (("objective", "objective"), ("generator", "generator"), ("discriminator", "discriminator")):
        before, now = _with_defaults(registry, kind, old[key]), _with_defaults(registry, kind, cfg[key])
        if before != now:
            raise UnpairedError(f"--resume: {key} was {before} in {path}, the recipe now says {now}; "
                                "the networks would not match. Use the recipe of that run, or a new out_dir")
    return state


def _with_defaults(registry, kind, choice):
    """{name, params} of a recipe choice, its factory's defaults filled in (as written when the
    name is not installed)."""
    plain = cast(dict, OmegaConf.to_container(choice, resolve=False))  # a choice is a mapping
    params = dict(plain.get("params") or {})
    if plain.get("name") in registry.names(kind):
        import inspect

        defaults = {k: v for k, v in registry.entry(kind, plain["name"]).parameters().items()
                    if v is not inspect.Parameter.empty}
        params = {**defaults, **params}
    return {"name": plain.get("name"), "params": _lists(params)}


def _lists(value):
    """Tuples as lists (a factory's default ``("a", "b")`` equals a recipe's ``[a, b]``)."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value
