"""Differentiable augmentation of everything the discriminators see (DiffAugment, ADA, yours).

The recipe's ``augment: {name, params}`` names an augmentation that a plugin registered
(``register_augmentations``; the contract is in unpaired.hookspecs). :func:`attach` applies it at
the one seam that every objective's discriminator calls pass through: a forward pre-hook on each
network ``parts.discriminator()`` built. While such a network is in training mode, its input is
replaced by ``augment(input, generator)``, so real images, generated ones, history-pool images
and a gradient penalty's interpolates (computed through D inside ``judge``) are all augmented,
in the discriminator's update and in the generator's, for every objective, with no code in the
objective. Gradients flow through the augmentation to the generator, as DiffAugment and ADA
need. ``unpaired.engine.assemble`` attaches it for training only: a checkpoint opened for inference
never builds it (inference never calls a discriminator anyway).

The engine owns, for every augmentation:

* its random numbers: a ``torch.Generator`` of its own per process, seeded from ``train.seed``
  and the rank (each process augments its images differently), saved in the checkpoint and
  restored by ``--resume``, so a resumed run draws what an uninterrupted one draws;
* the same draw on request (:meth:`Augmentation.same_draw`, reached by objectives as
  ``step.same_draw()``): within the block, every batch of one shape gets the draw the first
  batch of that shape got;
* precision: it runs outside autocast on float32 images; the result is cast back;
* its run state (an ``nn.Module``'s ``state_dict``: ADA's p and statistics), saved per rank
  (rank 0's in the checkpoint's ``augment``, rank N's in ``rankN.pt``), restored by ``--resume``;
* its optional capabilities: ``observe(real_logits)`` receives the real logits of every
  discriminator loss (through ``Adversarial.observers``, less the loss's ``boundary``);
  ``adapt(step, images, reduce)`` runs after every step with a sum over the processes;
  ``metrics()`` values are logged (progress, ``metrics.csv``).
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable

import torch
from torch import nn

from ..errors import UnpairedError

log = logging.getLogger("unpaired")

# the augmentation's generator per process: a stream apart from torch's global one (which the
# engine seeds with train.seed on every rank, so that the ranks start with the same weights)
_STREAM = 0x617  # "a", in the top bits


def generator_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s augmentation generator in a run of ``train.seed`` = ``seed``
    (seeds below 2**32, ranks below 2**20: distinct for every pair)."""
    return (_STREAM << 52) | ((int(seed) & 0xFFFFFFFF) << 20) | (int(rank) & 0xFFFFF)


class Augmentation:
    """The engine's side of the recipe's augmentation: ``module`` (what the plugin's factory
    built) applied to the inputs of the discriminators it is attached to (:func:`attach`).

    ``augment(x)`` applies it as the hooks do (float32, outside autocast, the generator);
    ``same_draw()`` replays draws; ``observe(logits)``, ``adapt(step, images, reduce)`` and
    ``metrics()`` forward to the module's optional methods; ``state_dict()`` /
    ``load_state_dict()`` hold its run state and the generator's."""

    def __init__(self, module: Callable, name: str, seed: int = 0, rank: int = 0) -> None:
        self.module, self.name = module, name
        self.seed, self.rank = int(seed), int(rank)
        self._generator: torch.Generator | None = None
        self._pending_rng: torch.Tensor | None = None  # a loaded state, for the generator made on first use
        self._pending_device = "cpu"  # the device type of the generator that state is of
        self._replay: dict | None = None  # inside same_draw(): shape -> generator state before its first draw
        self._after: torch.Tensor | None = None  # inside same_draw(): the state after the newest draw
        self.handles: list = []  # the forward pre-hooks (removable)
        self.calls = 0  # batches augmented (a Python count, no device work; what tests read)

    # -- what the hooks run ---------------------------------------------------------------
    def generator(self, device: torch.device) -> torch.Generator:
        """This process's generator on ``device`` (made, seeded or loaded, on first use)."""
        device = torch.device(device)
        gen = self._generator
        if gen is None or gen.device.type != device.type:
            gen = torch.Generator(device=device)
            gen.manual_seed(generator_seed(self.seed, self.rank))
            if self._pending_rng is not None and self._pending_device != device.type:
                log.info("augment: the checkpoint's augmentation generator is of a %s device, this run trains on %s: "
                         "its draws start afresh from train.seed", self._pending_device, device.type)
            elif self._pending_rng is not None:
                gen.set_state(self._pending_rng)
            self._pending_rng = None
            self._generator = gen
        return gen

    @torch.compiler.disable  # a compiled discriminator runs this eagerly (a graph break), p stays a tensor
    def augment(self, x: torch.Tensor) -> torch.Tensor:
        gen = self.generator(x.device)
        key, replayed = tuple(x.shape), False
        if self._replay is not None:
            replayed = key in self._replay
            if replayed:
                gen.set_state(self._replay[key])
            else:
                self._replay[key] = gen.get_state()
        with torch.autocast(x.device.type, enabled=False):
            y = self.module(x.float(), gen)
        if replayed and self._after is not None:  # the next new shape draws past every draw so far
            gen.set_state(self._after)
        elif self._replay is not None:
            self._after = gen.get_state()
        self.calls += 1
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            raise UnpairedError(f"augment.name: augmentation {self.name!r} turned a {tuple(x.shape)} batch into "
                                f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}; the "
                                "plugin contract: the same shape (register_augmentations in unpaired/hookspecs.py)")
        y = y.to(x.dtype)
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            y = y.contiguous(memory_format=torch.channels_last)
        return y

    def _hook(self, module: nn.Module, args: tuple):
        if not module.training or not args or not isinstance(args[0], torch.Tensor):
            return None
        return (self.augment(args[0]), *args[1:])

    @contextlib.contextmanager
    def same_draw(self):
        """Within the block, a batch of a shape already augmented in it gets the same draw (the
        same per-sample transforms) as the first; afterwards the generator continues past every
        draw made in the block. Nested blocks are one block."""
        if self._replay is not None:
            yield
            return
        self._replay, self._after = {}, None
        try:
            yield
        finally:
            after = self._after
            self._replay, self._after = None, None
            if after is not None and self._generator is not None:
                self._generator.set_state(after)

    # -- the module's optional capabilities -------------------------------------------------
    def observer(self, boundary: float = 0.0):
        """A callable for ``Adversarial.observers``: real logits, less ``boundary``, to the
        module's ``observe``; None when the module has none."""
        observe = getattr(self.module, "observe", None)
        if not callable(observe):
            return None

        def observe_real(real_logits) -> None:
            observe(real_logits.detach().float() - boundary if boundary else real_logits.detach().float())

        return observe_real

    def adapt(self, step: int, images: int, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        adapt = getattr(self.module, "adapt", None)
        if callable(adapt):
            adapt(step, images, reduce)

    def metrics(self) -> dict:
        """The module's ``metrics()``: {name: scalar tensor}, the same on every process."""
        metrics = getattr(self.module, "metrics", None)
        return dict(metrics()) if callable(metrics) else {}

    def to(self, device) -> "Augmentation":
        if isinstance(self.module, nn.Module):
            self.module.to(device)
        return self

    # -- run state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state: dict[str, Any] = {"name": self.name}
        if isinstance(self.module, nn.Module):
            state["state"] = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        if self._generator is not None:
            state["rng"], state["rng_device"] = self._generator.get_state(), self._generator.device.type
        elif self._pending_rng is not None:
            state["rng"], state["rng_device"] = self._pending_rng, self._pending_device
        return state

    def load_state_dict(self, state: dict | None, source: str = "the checkpoint") -> None:
        """Restore what :meth:`state_dict` saved. A state of another augmentation (the recipe
        changed ``augment.name`` on ``--resume``), or none, starts this one afresh, with a line
        saying so."""
        if not state:
            log.info("augment: %s holds no augmentation state; %r starts afresh (augment=null continues "
                     "without augmentation)", source, self.name)
            return
        if state.get("name") != self.name:
            log.info("augment: %s holds the state of augmentation %r; %r starts afresh", source, state.get("name"),
                     self.name)
            return
        if isinstance(self.module, nn.Module) and "state" in state:
            self.module.load_state_dict(state["state"])
        if "rng" in state:
            self._generator = None
            self._pending_rng, self._pending_device = state["rng"], state.get("rng_device", "cpu")

    def detach(self) -> None:
        """Remove the hooks (the discriminators see their inputs as they are again)."""
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def build(cfg, registry, rank: int = 0) -> Augmentation | None:
    """The recipe's augmentation (``augment.name``; None when it is null), its params checked
    by the registry (signature) and the factory (values, naming ``augment.params.<key>``)."""
    from ..recipe.config import plain

    choice = cfg.get("augment")
    if choice is None or choice.name is None:
        return None
    module = registry.create("augmentation", choice.name, plain(choice.params), key="augment")
    if not callable(module):
        raise UnpairedError(f"augment.name: augmentation {choice.name!r} built a {type(module).__name__}, which "
                            "is not callable as augment(images, generator) (register_augmentations in "
                            "unpaired/hookspecs.py)")
    return Augmentation(module, choice.name, seed=int(cfg.train.seed), rank=rank)


def attach(augmentation: Augmentation, discriminators, adversarial=()) -> Augmentation:
    """Hook ``augmentation`` onto each of ``discriminators`` (their inputs, in training mode)
    and its observer onto each adversarial loss of ``adversarial``."""
    for net in discriminators:
        augmentation.handles.append(net.register_forward_pre_hook(augmentation._hook))
    for adv in adversarial:
        observe = augmentation.observer(adv.boundary)
        if observe is not None:
            adv.observers.append(observe)
    return augmentation
