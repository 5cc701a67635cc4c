"""From a resolved recipe to objects: plugins loaded, every name and param checked, datasets,
provenance. The objective itself is assembled in unpaired.engine.assemble. Errors name the recipe key."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from . import conditions
from .assemble import declared_losses, resolve_losses
from .augment import Augmentation
from .augment import build as build_augmentation
from ..recipe.config import plain
from ..errors import UnpairedError
from ..loading import get_registry, load_plugin_file
from ..registry import Registry
from .objective import init_weights  # noqa: F401  (its home before 0.2)


def load_recipe_plugins(cfg: DictConfig) -> Registry:
    for path in cfg.plugins:
        load_plugin_file(path)
    return get_registry()


@dataclass
class CheckedRecipe:
    """What :func:`check_recipe` resolved and built on its way, for ``assemble(checked=...)``,
    so nothing is resolved or built twice: the objective's losses ({role: {name, weight,
    params}}) and the recipe's augmentation (None without one), not yet hooked onto a network."""

    losses: dict[str, dict]
    augmentation: Augmentation | None = None


def check_recipe(cfg: DictConfig, registry: Registry | None = None, rank: int = 0) -> CheckedRecipe:
    """Every plugin name and param the recipe uses, checked before any data or network is
    touched; every problem found is reported at once (one UnpairedError, a line each). The
    augmentation is built here (cheap, no data: its param values are checked too), for this
    ``rank``; networks are built only when the objective needs conditions of them, on the meta
    device (no memory, no weights), to ask which conditions they take."""
    registry = registry or get_registry()
    problems = []

    def check(what, *args, **kwargs):
        try:
            return what(*args, **kwargs)
        except UnpairedError as exc:
            problems.append(str(exc))

    losses = {}
    entry = check(registry.entry, "objective", cfg.objective.name, key="objective.name")
    if entry is not None:
        check(registry.check_params, "objective", cfg.objective.name, plain(cfg.objective.params), key="objective")
        losses = resolve_losses(cfg, declared_losses(entry.factory), cfg.objective.name)
    for kind, key in (("generator", "generator"), ("discriminator", "discriminator")):
        check(registry.check_params, kind, cfg[key].name, plain(cfg[key].params), key=key)
    check(registry.check_params, "dataset", cfg.data.name, plain(cfg.data.params), key="data")
    for role, choice in losses.items():
        if choice["name"] is not None:
            check(registry.check_params, "loss", choice["name"], choice["params"], key=f"losses.{role}")
    augmentation = check(build_augmentation, cfg, registry, rank)
    for i, choice in enumerate(cfg.constraints):
        check(registry.check_params, "constraint", choice.name, plain(choice.params), key=f"constraints.{i}")
    if entry is not None:
        for kind in conditions.KINDS:
            check(check_conditions, cfg, registry, entry.factory, kind)
    if cfg.eval.every > 0 or cfg.eval.at_end:
        check(registry.check_params, "feature_extractor", cfg.eval.extractor, plain(cfg.eval.extractor_params),
              key="eval.extractor")
    problems = list(dict.fromkeys(problems))  # a bad param is found by check_params and by a build
    if problems:
        raise UnpairedError(problems=problems)
    return CheckedRecipe(losses, augmentation)


def check_conditions(cfg: DictConfig, registry: Registry, factory: Any, kind: str) -> None:
    """The recipe's ``kind`` network, built on the meta device (no memory), takes the conditions
    the objective ``factory`` needs (unpaired.engine.conditions); a plugin that cannot be built there
    is checked when it is built for real."""
    needs = conditions.needed(factory, kind)
    choice = cfg[kind]
    if not needs or choice.name not in registry.names(kind):
        return
    import torch

    channels = {"in_channels": 3, "out_channels": 3} if kind == "generator" else {"in_channels": 3}
    try:
        with torch.device("meta"):
            net = registry.create(kind, choice.name, plain(choice.params), key=kind, **channels)
    except UnpairedError:
        raise
    except Exception:
        return
    conditions.check(net, kind, needs, cfg.objective.name, choice.name, registry.entry(kind, choice.name).factory)


def data_problems(cfg: DictConfig, registry: Registry) -> list[str]:
    """What building the recipe's datasets (training and held-out) would refuse, as messages:
    called when the recipe has other problems, so that one command names them all (a misspelt
    generator and a missing data folder together)."""
    if cfg.data.name not in registry.names("dataset"):
        return []  # check_recipe names it
    problems = []
    for test in (False, True):
        try:
            build_dataset(cfg, registry, test=test)
        except UnpairedError as exc:
            problems += exc.problems or [str(exc)]
    return problems


def build_dataset(cfg: DictConfig, registry: Registry | None = None, test: bool = False) -> Any:
    """The training dataset, or the held-out one (data.params <- data.test_params)."""
    registry = registry or get_registry()
    params = plain(cfg.data.params)
    if test:
        if cfg.data.test_params is None:
            return None
        params.update(plain(cfg.data.test_params))
    return registry.create("dataset", cfg.data.name, params, key="data")


def provenance(cfg: DictConfig, registry: Registry | None = None,
               losses: dict | None = None) -> dict[str, dict]:
    """Which plugin (distribution, version) supplied each name the recipe uses; ``losses``: the
    resolved ones (unpaired.engine.assemble), default the recipe's ``losses`` as written."""
    registry = registry or get_registry()
    if losses is None:
        losses = {r: {"name": c.name} for r, c in cfg.losses.items()}
    chosen = {
        "objective": ("objective", cfg.objective.name),
        "generator": ("generator", cfg.generator.name),
        "discriminator": ("discriminator", cfg.discriminator.name),
        "dataset": ("dataset", cfg.data.name),
        **{f"loss.{r}": ("loss", c["name"]) for r, c in losses.items() if c.get("name") is not None},
    }
    if cfg.augment.name is not None:
        chosen["augment"] = ("augmentation", cfg.augment.name)
    out = {}
    for role, (kind, name) in chosen.items():
        p = registry.entry(kind, name).plugin
        out[role] = {"kind": kind, "name": name, "plugin": p.name, "source": p.source,
                     "dist": p.dist, "version": p.version, "location": p.location}
    return out
