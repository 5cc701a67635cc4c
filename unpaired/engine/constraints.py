"""Constraints: terms the engine adds to the generator's loss, for every objective, so that a
translation keeps what it must (labels, masks, structure) — the recipe's ``constraints`` list:

    constraints:
      - {name: semantic, weight: 1.0, params: {domain: A}}
      - {name: edges, weight: 10.0}

Each entry is a registered ``constraint`` (``register_constraints``), built with the data's image
channels and label classes. A constraint has:

* ``domain``: "A" or "B": whose real images (and labels) it reads; it constrains that domain's
  translation (A: ``a2b``), which the objective must have (a one-sided objective has a2b only);
* ``needs_labels``: True when it reads labels (the data must have them for ``domain``);
* ``generator_loss(real, translated, labels)``: its term, a scalar tensor. The engine translates
  the step's real images of ``domain`` with the objective's translator (what inference runs) in
  the phase that trains the translating network, and adds ``weight x`` the term to that phase's
  loss; it is logged as ``constraint_<name>``;
* optionally ``networks()`` ({name: nn.Module}) and ``train_loss(real, labels)``: networks of its
  own (the segmentation network of ``semantic``), trained in a phase of their own,
  ``constraint_<i>`` (its loss logged as ``loss_constraint_<i>``), with an optimizer, in the
  checkpoint (``nets``: ``constraint_<i>.<name>``), resumed bit for bit and averaged over the
  ranks under torchrun like every phase.
"""
from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from ..errors import UnpairedError, one_of
from ..recipe.config import plain
from .objective import translator_of

DOMAINS = {"A": "a2b", "B": "b2a"}


class Holder(nn.Module):
    """A constraint's own networks as one module (what its phase's forward and DDP see):
    ``forward(real, labels)`` is the constraint's ``train_loss``."""

    def __init__(self, constraint: Any) -> None:
        super().__init__()
        self.constraint = constraint
        self.nets = nn.ModuleDict(constraint.networks())

    def forward(self, real: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.constraint.train_loss(real, labels)


class Constraints:
    """The recipe's constraints, built and checked against the objective and the data."""

    def __init__(self, cfg: DictConfig, registry: Any, objective: Any, channels: tuple[int, int],
                 label_classes: dict[str, int]) -> None:
        self.entries: list[tuple[str, float, Any]] = []  # (log name, weight, constraint)
        self.holders: dict[str, Holder] = {}  # phase -> the networks a constraint trains
        directions = dict(objective.translators)
        names: list[str] = []
        for i, choice in enumerate(cfg.constraints):
            key = f"constraints.{i}"
            params = plain(choice.params)
            domain = params.get("domain", "A")
            one_of(f"{key}.params.domain", domain, tuple(DOMAINS))
            factory = registry.entry("constraint", choice.name, key=f"{key}.name").factory
            if getattr(factory, "needs_labels", False) and domain not in label_classes:
                self._no_labels(key, choice.name, domain)
            c = registry.create("constraint", choice.name, params, key=key,
                                channels=channels[0 if domain == "A" else 1], classes=label_classes.get(domain))
            domain = getattr(c, "domain", domain)
            if DOMAINS.get(domain) not in directions:
                raise UnpairedError(f"{key}: constraint {choice.name!r} keeps the translation of domain {domain}, "
                                    f"and objective {cfg.objective.name!r} translates {', '.join(directions)} only")
            if getattr(c, "needs_labels", False) and domain not in label_classes:
                self._no_labels(key, choice.name, domain)
            if not callable(getattr(c, "generator_loss", None)):
                raise UnpairedError(f"{key}: constraint {choice.name!r} built a {type(c).__name__} without "
                                    "generator_loss(real, translated, labels) (register_constraints in "
                                    "unpaired/hookspecs.py)")
            name = f"constraint_{choice.name}" + (f"_{names.count(choice.name)}" if choice.name in names else "")
            names.append(choice.name)
            self.entries.append((name, float(choice.weight), c))
            if callable(getattr(c, "networks", None)) and callable(getattr(c, "train_loss", None)):
                self.holders[f"constraint_{i}"] = Holder(c)

    @staticmethod
    def _no_labels(key: str, name: str, domain: str) -> None:
        raise UnpairedError(f"{key}: constraint {name!r} reads the labels of domain {domain}, and the data has none: "
                            f"put them in a folder beside the images ({'trainA' if domain == 'A' else 'trainB'}_label/ "
                            "beside trainA/: a PNG of class indices or a 0/255 mask per image, same name)")

    def __bool__(self) -> bool:
        return bool(self.entries)

    def networks(self) -> dict[str, nn.Module]:
        """{``constraint_<i>.<name>``: network} of every constraint's own networks."""
        return {f"{phase}.{name}": net for phase, holder in self.holders.items() for name, net in holder.nets.items()}

    def param_groups(self) -> dict[str, list]:
        return {phase: [p for p in holder.parameters() if p.requires_grad] for phase, holder in self.holders.items()}

    def segmenter(self) -> Any:
        """The network eval scores the per-class agreement with (``miou_a2b``): the first
        constraint of domain A that can segment (``segment(images) -> logits``), or None."""
        for _, _, c in self.entries:
            if c.domain == "A" and callable(getattr(c, "segment", None)):
                return c.segment
        return None

    def load(self, nets: dict[str, dict], path: object) -> None:
        """The constraints' networks' weights from a checkpoint's ``nets``."""
        for name, net in self.networks().items():
            if name not in nets:
                raise UnpairedError(f"checkpoint {path} holds no {name}: it was trained without this constraint")
            net.load_state_dict(nets[name])

    def generator_terms(self, objective: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{log name: weight x term} of every constraint on this micro-batch (``batch``: "A", "B"
        and the labels "A_label", "B_label" where the data has them)."""
        out = {}
        translated: dict[str, torch.Tensor] = {}
        for name, weight, c in self.entries:
            domain = c.domain
            if domain not in translated:  # one translation per domain, shared by its constraints
                translated[domain] = translator_of(objective, DOMAINS[domain])(batch[domain])
            out[name] = weight * c.generator_loss(batch[domain], translated[domain], batch.get(f"{domain}_label"))
        return out

    def train_phases(self, phases: dict[str, nn.Module], batch: dict[str, torch.Tensor], update: Any) -> None:
        """Each constraint's own networks trained one step on the real labelled images."""
        for phase, holder in self.holders.items():
            domain = holder.constraint.domain
            update(phase, phases[phase](batch[domain], batch.get(f"{domain}_label")))
