"""The phases of a training step: one optimizer per phase, ``update(phase, loss)``, and the
:class:`Step` an objective's ``train_step`` receives. Used by the trainer and by
``unpaired.testing.check_objective`` alike, so an objective checked there trains the same way.

``update(phase, loss)`` zeroes the phase's gradients, backpropagates ``loss`` into that phase's
parameters alone (``backward(inputs=...)``: a generator loss that runs through a discriminator
leaves the discriminator's gradients untouched, with no freezing in the objective), scaled under
fp16 and outside autocast, and steps the phase's optimizer. It returns False when the fp16
scaler skipped the step (an inf or NaN gradient), True otherwise.

Gradient accumulation (``train.accumulate: N``): the engine calls the objective's ``train_step``
once per micro-batch, N times a step. Each ``update(phase, loss)`` backpropagates ``loss / N``
into the gradients the phase gathers since the step's first micro-batch; the optimizer steps
(one scaler step in fp16) at the last micro-batch only, so N micro-batches of B train as one
batch of N x B. Per-phase learning rates and betas (``train.phase_lr``, ``train.phase_betas``)
set each phase's optimizer; every phase follows ``train.lr``'s schedule (its factor).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import UnpairedError


class PhaseOptimizers(Mapping):
    """One Adam optimizer per phase of ``groups`` ({phase: [parameters]}; as a mapping, phase ->
    its optimizer), the fp16 scaler, and the losses each phase was last given (``losses``:
    {phase: tensor}, for the log; with accumulation, the mean over the step's micro-batches).

    ``lr`` and ``betas``: every phase's, unless ``phase_lr`` / ``phase_betas`` ({phase: value})
    say otherwise. ``accumulate``: micro-batches per optimizer step; the engine sets ``micro``
    (0 .. accumulate - 1) before each. ``after_step(phase)``: called after each optimizer step
    (the averaged generator's update, unpaired.engine.average)."""

    def __init__(self, groups: dict[str, list], lr: float, betas=(0.5, 0.999), scaler=None,
                 device_type: str = "cpu", phase_lr: dict | None = None, phase_betas: dict | None = None,
                 accumulate: int = 1) -> None:
        self.params = {phase: list(ps) for phase, ps in groups.items()}
        self.base_lr = {phase: float((phase_lr or {}).get(phase, lr)) for phase in self.params}
        self.optimizers = {phase: torch.optim.Adam(ps, lr=self.base_lr[phase],
                                                   betas=tuple((phase_betas or {}).get(phase, betas)))
                           for phase, ps in self.params.items()}
        self.scaler = scaler if scaler is not None else torch.amp.GradScaler(device_type, enabled=False)
        self.device_type = device_type
        self.accumulate = int(accumulate)
        self.micro = 0  # the micro-batch of the step now running
        self.after_step: Callable[[str], None] | None = None
        self.losses: dict[str, torch.Tensor] = {}
        self.updated: list[str] = []  # phases updated since the last reset (one step)
        self._micro_updates: list[str] = []  # phases updated in the micro-batch now running

    def start_micro(self, micro: int) -> None:
        """Micro-batch ``micro`` of the step begins (0 starts a step: ``updated`` is cleared)."""
        self.micro = micro
        self._micro_updates = []
        if micro == 0:
            self.updated.clear()

    def update(self, phase: str, loss: torch.Tensor) -> bool:
        """Backpropagate ``loss`` into ``phase``'s parameters only (scaled in fp16, outside
        autocast; its gradients zeroed at the step's first micro-batch) and, at the last
        micro-batch, step its optimizer; False when the fp16 scaler skipped the step."""
        if phase in self._micro_updates and self.accumulate > 1:
            raise UnpairedError(f"train.accumulate={self.accumulate}: the objective updated phase {phase!r} twice "
                                "in one train_step; accumulation needs one update per phase per train_step "
                                "(use train.accumulate=1 with this objective)")
        self._micro_updates.append(phase)
        opt = self.optimizers[phase]
        first, last = self.micro == 0, self.micro == self.accumulate - 1
        if first:
            opt.zero_grad(set_to_none=True)
        params = [p for p in self.params[phase] if p.requires_grad]
        scaled = loss / self.accumulate if self.accumulate > 1 else loss
        with torch.autocast(self.device_type, enabled=False):
            self.scaler.scale(scaled).backward(inputs=params or None)
        mean = scaled.detach() if first else self.losses[phase] + scaled.detach()
        self.losses[phase] = mean
        if first:
            self.updated.append(phase)
        if not last:
            return True
        stepped = True
        if self.scaler.is_enabled():
            self.scaler.unscale_(opt)
            grads = [p.grad for p in params if p.grad is not None]
            stepped = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()) if grads else True
        self.scaler.step(opt)
        if self.after_step is not None:
            self.after_step(phase)
        return stepped

    def set_lr(self, factor: float) -> None:
        """Every phase's learning rate at ``factor`` x its own (the schedule's factor)."""
        for phase, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = self.base_lr[phase] * factor

    def state_dict(self) -> dict:
        return {phase: opt.state_dict() for phase, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        """Each phase's optimizer state; a phase the state lacks (a constraint added at --resume)
        starts afresh."""
        for phase, opt in self.optimizers.items():
            if phase in state or not phase.startswith("constraint_"):
                opt.load_state_dict(state[phase])

    def __getitem__(self, phase: str) -> torch.optim.Optimizer:
        return self.optimizers[phase]

    def __iter__(self) -> Iterator[str]:
        return iter(self.optimizers)

    def __len__(self) -> int:
        return len(self.optimizers)


@dataclass
class Step(Mapping):
    """What ``train_step(step, a, b, update)`` gets first. As a mapping, ``step[phase]`` is the
    module whose forward that phase calls (its DistributedDataParallel wrapper under torchrun),
    as before; its attributes tell the objective where it is:

    ``index`` (steps completed before this one), ``epoch``, ``total`` (the run's steps),
    ``device``, ``dtype`` (the autocast dtype, None for fp32), ``rank`` and ``world_size``,
    ``config`` (the recipe, read only), ``micro`` and ``micro_batches`` (with
    ``train.accumulate: N`` the engine calls ``train_step`` N times a step, ``micro`` = 0 .. N-1,
    each with one micro-batch; the optimizers step after the last). An objective that keeps its own step-dependent state
    (an EMA warm-up) can read ``index`` instead of counting, so it resumes right.

    ``same_draw()``: a block within which the recipe's augmentation (unpaired.engine.augment) gives
    every batch of a shape the draw the first batch of that shape got (e.g. a real batch and
    its translation under the same transforms); outside it each call draws anew, per sample.
    Without an augmentation it does nothing. ``augmentation`` is the engine's (or None).
    """

    phases: dict[str, nn.Module]
    index: int = 0
    epoch: int = 0
    total: int = 0
    device: Any = field(default_factory=lambda: torch.device("cpu"))
    dtype: Any = None
    rank: int = 0
    world_size: int = 1
    config: Any = None
    augmentation: Any = None
    micro: int = 0  # this call's micro-batch of the step (train.accumulate), from 0
    micro_batches: int = 1  # train.accumulate

    def same_draw(self):
        """The augmentation's same-draw block (see the class docstring); a no-op without one."""
        return self.augmentation.same_draw() if self.augmentation is not None else contextlib.nullcontext()

    def __getitem__(self, phase: str) -> nn.Module:
        return self.phases[phase]

    def __iter__(self) -> Iterator[str]:
        return iter(self.phases)

    def __len__(self) -> int:
        return len(self.phases)
