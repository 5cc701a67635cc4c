"""Objectives: what one training step computes and updates (CycleGAN, CUT, ...).

An objective is a plugin (``register_objectives``; the contract is in unpaired.hookspecs).
Its factory gets a :class:`Parts`: the recipe's generator, discriminator and loss choices,
ready to build, so that any registered architecture works with any objective. The engine
(unpaired.trainer) keeps what every objective needs: optimizers, the schedule, autocast and
the fp16 scaler, DDP, compile, checkpoints, RNG, signals, events, evaluation.
"""
from __future__ import annotations

import logging

import torch
from omegaconf import OmegaConf
from torch import nn

from .config import plain
from .errors import UnpairedError
from .hookspecs import AdversarialLoss

log = logging.getLogger("unpaired")
ADVERSARIAL, RECONSTRUCTION = "adversarial", "reconstruction"


def set_requires_grad(nets, flag):
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def is_adversarial(loss):
    """True for an :class:`unpaired.hookspecs.AdversarialLoss` (it has both methods)."""
    return isinstance(loss, AdversarialLoss) and callable(loss.generator_loss) and callable(loss.discriminator_loss)


class Objective(nn.Module):
    """An optional base class: the contract's defaults. Subclasses set ``translators`` and
    ``phases`` and define ``networks``, ``param_groups`` and ``train_step``."""

    losses: dict = {}  # role -> default {name, weight, params} or None (the recipe must choose)
    loss_kinds: dict = {}  # role -> "adversarial" | "reconstruction"
    translators: dict = {}
    phases: dict = {}

    def networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def param_groups(self) -> dict[str, list]:
        raise NotImplementedError

    def train_step(self, run, a, b, update) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def samples(self, a, b):
        """Each direction's (real, translated) row."""
        nets = self.networks()
        out = {}
        for direction, name in self.translators.items():
            x = a if direction == "a2b" else b
            out[direction] = (x, nets[name](x))
        return out

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass


class Parts:
    """What an objective is built from (given to its factory as ``parts``).

    ``channels``: (channels of A, channels of B), from the data. ``generator(cin, cout)`` and
    ``discriminator(cin)``: new networks of the recipe's choice. ``loss(role)``: the recipe's
    ``losses.<role>`` (resolved against the objective's defaults, kind-checked);
    ``weight(role)``: its weight. ``seed`` (``train.seed``) and ``rank`` (this process's index
    under torchrun) seed per-process randomness; ``config`` is the whole recipe (read only).
    """

    def __init__(self, cfg, registry, channels, objective_name, loss_kinds=None, rank=0):
        self.config, self.registry = cfg, registry
        self.channels = tuple(channels)
        self.seed, self.rank = int(cfg.train.seed), rank
        self.objective_name = objective_name
        self.loss_kinds = dict(loss_kinds or {})
        self.built = {}  # id(network) -> ("generator", cin, cout) | ("discriminator", cin)
        self._sized = set()

    def generator(self, in_channels, out_channels):
        return self._network("generator", in_channels=in_channels, out_channels=out_channels)

    def discriminator(self, in_channels):
        return self._network("discriminator", in_channels=in_channels)

    def _network(self, kind, **channels):
        from .probe import check_size

        choice = self.config[kind]
        record = (kind, *channels.values())

        def build():
            return self.registry.create(kind, choice.name, plain(choice.params), key=kind, **channels)

        if record not in self._sized:  # counted on the meta device, before any memory is allocated
            check_size(build, kind, choice.name)
            self._sized.add(record)
        net = build()
        if not isinstance(net, nn.Module):
            raise UnpairedError(f"{kind}.name: {choice.name!r} built a {type(net).__name__}, not a torch nn.Module")
        self.built[id(net)] = record
        return net

    def loss(self, role):
        if role not in self.config.losses or self.config.losses[role].name is None:
            raise UnpairedError(f"losses.{role}.name: objective {self.objective_name!r} asks for a {role!r} "
                                "loss and the recipe chooses none; set it, e.g. losses." + role + ".name=l1")
        choice, key = self.config.losses[role], f"losses.{role}"
        loss = self.registry.create("loss", choice.name, plain(choice.params), key=key)
        kind = self.loss_kinds.get(role)
        if kind == ADVERSARIAL and not is_adversarial(loss):
            raise UnpairedError(f"{key}.name: loss {choice.name!r} is a reconstruction loss; the {role} slot "
                                "needs one with generator_loss() and discriminator_loss() (e.g. bce, lsgan)")
        if kind == RECONSTRUCTION and is_adversarial(loss):
            raise UnpairedError(f"{key}.name: loss {choice.name!r} is an adversarial loss; the {role} slot needs "
                                "a reconstruction loss called as loss(output, target) (e.g. l1)")
        if kind == RECONSTRUCTION and not callable(loss):
            raise UnpairedError(f"{key}.name: loss {choice.name!r} is not callable as loss(output, target)")
        return loss

    def weight(self, role):
        choice = self.config.losses.get(role)
        return 1.0 if choice is None or choice.weight is None else float(choice.weight)



def resolve_losses(cfg, registry):
    """Fill ``cfg.losses`` from the objective's declared roles and defaults (in place): each
    role it uses gets the recipe's choice over the objective's default; a role the recipe sets
    but the objective does not use gets one warning (so one flag swaps the objective)."""
    name = cfg.objective.name
    entry = registry.entry("objective", name, key="objective.name")
    return fill_losses(cfg, getattr(entry.factory, "losses", {}) or {}, name)


def fill_losses(cfg, declared, name):
    """``cfg.losses`` for an objective that declares ``declared`` ({role: default})."""
    declared = dict(declared)
    for role, default in declared.items():
        choice = cfg.losses.get(role)
        chosen = {} if choice is None else {k: v for k, v in OmegaConf.to_container(choice).items()
                                             if v is not None and not (k == "params" and not v and default)}
        merged = dict(default or {})
        if choice is not None and choice.name is not None and default and choice.name != default.get("name"):
            merged.pop("params", None)  # another loss: the default's params are not its params
        merged.update(chosen)
        merged.setdefault("weight", 1.0)
        from .config import LossChoice

        cfg.losses[role] = LossChoice(**merged)
    unused = [role for role, choice in cfg.losses.items() if role not in declared and _is_set(choice)]
    if unused:
        keys = ", ".join(f"losses.{r}" for r in unused)
        log.warning("%s: not used by objective %r (it uses %s); ignored", keys, name,
                    ", ".join(declared) or "no recipe losses")
    for role in [r for r in cfg.losses if r not in declared]:
        del cfg.losses[role]
    return cfg


def _is_set(choice):
    return choice is not None and (choice.name is not None or choice.weight is not None or bool(choice.params))


def build_objective(cfg, registry, channels=(3, 3), rank=0):
    """The recipe's objective, its networks built (weights not yet initialised); ``channels``:
    the image channels of domains A and B (the data's; a checkpoint stores them)."""
    o = cfg.objective
    entry = registry.entry("objective", o.name, key="objective.name")
    parts = Parts(cfg, registry, channels, o.name, getattr(entry.factory, "loss_kinds", {}), rank=rank)
    objective = registry.create("objective", o.name, plain(o.params), key="objective", parts=parts)
    check_objective_shape(objective, o.name, parts)
    objective.built_by_parts = parts.built
    return objective


def check_objective_shape(objective, name, parts):
    """The contract's structure, checked once at build time: errors name the objective."""
    where = f"objective.name: objective {name!r}"
    if not isinstance(objective, nn.Module):
        raise UnpairedError(f"{where} built a {type(objective).__name__}, not a torch nn.Module")
    for attr in ("networks", "param_groups", "train_step", "samples"):
        if not callable(getattr(objective, attr, None)):
            raise UnpairedError(f"{where} has no method {attr}() (see register_objectives in unpaired/hookspecs.py)")
    nets = objective.networks()
    translators = getattr(objective, "translators", None)
    if not isinstance(translators, dict) or "a2b" not in translators or set(translators) - {"a2b", "b2a"}:
        raise UnpairedError(f"{where}: translators must map 'a2b' (and optionally 'b2a') to network names, "
                            f"got {translators!r}")
    for direction, net_name in translators.items():
        net = nets.get(net_name)
        if net is None or parts.built.get(id(net), ("",))[0] != "generator":
            raise UnpairedError(f"{where}: translators[{direction!r}] = {net_name!r} must name one of its "
                                f"networks() made by parts.generator(); networks: {', '.join(nets)}")
    groups = objective.param_groups()
    phases = getattr(objective, "phases", None)
    if not isinstance(phases, dict) or set(phases) != set(groups):
        raise UnpairedError(f"{where}: phases ({', '.join(phases or {})}) and param_groups() "
                            f"({', '.join(groups)}) must name the same phases")
    seen = {}
    for phase, params in groups.items():
        for p in params:
            if id(p) in seen:
                raise UnpairedError(f"{where}: a parameter is in param groups {seen[id(p)]!r} and {phase!r}")
            seen[id(p)] = phase
    missing = [n for n, net in nets.items() for p in net.parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        raise UnpairedError(f"{where}: trainable parameters of {', '.join(sorted(set(missing)))} are in no "
                            "param group (no optimizer would train them)")


def translator_record(objective):
    """For checkpoints: {direction: {net, in_channels, out_channels}} of each translator."""
    nets, built = objective.networks(), objective.built_by_parts
    out = {}
    for direction, name in objective.translators.items():
        _, cin, cout = built[id(nets[name])]
        out[direction] = {"net": name, "in_channels": cin, "out_channels": cout}
    return out
