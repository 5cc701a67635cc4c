"""One path from a recipe to a built objective, for training (unpaired.engine.trainer), for the contract
checks plugin authors run (unpaired.testing.check_objective) and for a checkpoint opened to
translate (unpaired.engine.restore):

    assembly = assemble(cfg, registry, channels=(3, 3))
    assembly.objective              the objective, its networks built through parts (initialised)
    assembly.losses                 {role: {name, weight, params}}: the recipe's over the objective's defaults
    assembly.kind_of(net)           "generator" | "discriminator" | None (the objective's own, e.g. CUT's F)
    assembly.translator("a2b")      the module that translates a direction
    assembly.translator_record()    {direction: {net, in_channels, out_channels}}, for checkpoints
    assembly.augmentation           the recipe's augmentation hooked onto the discriminators
                                    (unpaired.engine.augment); None for inference or without one

The recipe itself is never changed here: ``--print-config``, ``runs/NAME/config.yaml`` and the
checkpoint hold the recipe as written, and the losses are resolved again, the same way, whenever
a checkpoint is opened.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig
import torch
from torch import nn

from . import conditions
from .augment import Augmentation, attach
from .augment import build as build_augmentation
from ..recipe.config import plain
from ..errors import UnpairedError
from ..loading import get_registry
from .objective import Adversarial, Parts, check_objective_shape, translator_of

log = logging.getLogger("unpaired")


def declared_losses(factory) -> dict:
    """{role: default} an objective's factory declares (its ``losses`` attribute)."""
    return dict(getattr(factory, "losses", None) or {})


def resolve_losses(cfg: DictConfig, declared: dict, objective: str, warn: bool = True) -> dict:
    """{role: {name, weight, params}} for an objective that declares ``declared`` ({role:
    default}): the recipe's ``losses.<role>`` laid over the default (a recipe that names another
    loss drops the default's params). A role the recipe sets and the objective does not use gets
    one warning line (``warn``), so one flag swaps the objective."""
    resolved = {}
    for role, default in declared.items():
        choice = cfg.losses.get(role)
        chosen = {} if choice is None else {k: v for k, v in plain(choice).items()
                                             if v is not None and not (k == "params" and not v and default)}
        merged = dict(default or {})
        if chosen.get("name") is not None and default and chosen["name"] != default.get("name"):
            merged.pop("params", None)  # another loss: the default's params are not its params
        merged.update(chosen)
        merged.setdefault("name", None)
        merged.setdefault("weight", 1.0)
        merged["params"] = dict(merged.get("params") or {})
        resolved[role] = merged
    unused = [role for role, choice in cfg.losses.items() if role not in declared and _is_set(choice)]
    if unused and warn:
        keys = ", ".join(f"losses.{r}" for r in unused)
        log.warning("%s: not used by objective %r (it uses %s); ignored", keys, objective,
                    ", ".join(declared) or "no recipe losses")
    return resolved


def _is_set(choice) -> bool:
    return choice is not None and (choice.name is not None or choice.weight is not None or bool(choice.params))


@dataclass
class Assembly:
    """What :func:`assemble` built: the objective, the parts it was built from, its losses."""

    objective: Any  # the objective: an nn.Module with the contract's methods (unpaired.hookspecs)
    parts: Parts
    losses: dict = field(default_factory=dict)
    augmentation: Augmentation | None = None

    def kind_of(self, net: nn.Module) -> str | None:
        return self.parts.kind_of(net)

    def networks_of(self, kind: str) -> list[nn.Module]:
        return [net for net in self.objective.networks().values() if self.kind_of(net) == kind]

    @property
    def adversarial(self) -> list[Adversarial]:
        """The adversarial losses handed to the objective (the engine's seam for penalties and
        augmentation statistics)."""
        return self.parts.adversarial

    def discriminators(self, augmented: bool = False) -> list[nn.Module]:
        """The objective's networks that ``parts.discriminator()`` built, once each
        (``augmented``: those the recipe's augmentation is hooked onto, not built with
        ``augment=False``)."""
        nets = {id(net): net for net in self.networks_of("discriminator")}
        return [net for key, net in nets.items() if not (augmented and key in self.parts.unaugmented)]

    def translator(self, direction: str) -> nn.Module:
        return translator_of(self.objective, direction)

    def discriminator_phases(self, groups: dict) -> set:
        """The phases of ``groups`` ({phase: [parameters]}) that train a discriminator."""
        ids = {id(p) for net in self.networks_of("discriminator") for p in net.parameters()}
        return {phase for phase, params in groups.items() if any(id(p) in ids for p in params)}

    def penalties(self, updated_phases, discriminator_phases) -> torch.Tensor | None:
        """The step's penalties (summed), after checking that every adversarial loss with a
        penalty was used through ``judge`` in a step that updated a discriminator; resets the
        losses' counts for the next step."""
        found = []
        for adv in self.adversarial:
            if adv.has_penalty and adv.judged == 0 and set(updated_phases) & set(discriminator_phases):
                raise UnpairedError(
                    f"objective {self.parts.objective_name!r} updated its discriminators without {adv.key}'s "
                    f"judge(discriminator, real, fake), so the penalty of loss {adv.name!r} was not added: compute "
                    "each discriminator's loss with parts.loss('adversarial').judge(...) (docs/plugins.md, "
                    "'Objectives')")
            found += adv.penalties
            adv.judged = 0
            adv.penalties.clear()
        return torch.stack(found).sum() if found else None

    def translator_record(self) -> dict:
        """{direction: {net, in_channels, out_channels}} of each translator, for checkpoints."""
        nets = self.objective.networks()
        out = {}
        for direction, name in self.objective.translators.items():
            _, cin, cout = self.parts.built[id(nets[name])]
            out[direction] = {"net": name, "in_channels": cin, "out_channels": cout}
        return out


def assemble(cfg: DictConfig, registry=None, channels=(3, 3), rank: int = 0, purpose: str = "train",
             losses: dict | None = None, factory=None, label: str | None = None, params: dict | None = None,
             warn: bool = True, checked: Any = None) -> Assembly:
    """The recipe's objective built through :class:`Parts` and checked against the contract.
    ``channels``: the image channels of domains A and B (the data's; a checkpoint stores them);
    ``rank``: this process under torchrun; ``purpose``: "train" or "inference" (see Parts);
    ``losses``: already resolved ones (else resolved here); ``checked``: what
    ``unpaired.engine.build.check_recipe`` resolved and built (its losses and augmentation,
    used as they are). ``factory`` (with ``params``) builds a
    given factory instead of the recipe's ``objective`` (unpaired.testing); ``label`` names it in
    errors (default: the factory's ``__name__``). For training,
    the recipe's ``augment`` is hooked onto every discriminator ``parts`` built
    (``assembly.augmentation``, unpaired.engine.augment)."""
    registry = registry or get_registry()
    if checked is not None:
        losses = checked.losses
    given = factory  # built as given (its label, else its name, in errors), never looked up
    name = label or (getattr(given, "__name__", None) if given is not None else None) or cfg.objective.name
    if factory is None:
        factory = registry.entry("objective", cfg.objective.name, key="objective.name").factory
    if params is None:
        params = plain(cfg.objective.params)
    if losses is None:
        losses = resolve_losses(cfg, declared_losses(factory), name, warn=warn)
    needs = {kind: conditions.needed(factory, kind) for kind in conditions.KINDS}
    parts = Parts(cfg, registry, channels, name, getattr(factory, "loss_kinds", {}), losses=losses, rank=rank,
                  purpose=purpose, conditions=needs)
    if given is None:
        objective = registry.create("objective", cfg.objective.name, params, key="objective", parts=parts)
    else:
        objective = factory(parts=parts, **params)
    check_objective_shape(objective, name, parts)
    assembly = Assembly(objective, parts, losses)
    if purpose != "inference":  # translation never augments (it never calls a discriminator)
        augmentation = checked.augmentation if checked is not None else build_augmentation(cfg, registry, rank)
        if augmentation is not None:
            assembly.augmentation = attach(augmentation, assembly.discriminators(augmented=True), assembly.adversarial)
    return assembly
