"""The phases of a training step: one optimizer per phase, ``update(phase, loss)``, and the
:class:`Step` an objective's ``train_step`` receives. Used by the trainer and by
``unpaired.testing.check_objective`` alike, so an objective checked there trains the same way.

``update(phase, loss)`` zeroes the phase's gradients, backpropagates ``loss`` into that phase's
parameters alone (``backward(inputs=...)``: a generator loss that runs through a discriminator
leaves the discriminator's gradients untouched, with no freezing in the objective), scaled under
fp16 and outside autocast, and steps the phase's optimizer. It returns False when the fp16
scaler skipped the step (an inf or NaN gradient), True otherwise.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


class PhaseOptimizers(Mapping):
    """One Adam optimizer per phase of ``groups`` ({phase: [parameters]}; as a mapping, phase ->
    its optimizer), the fp16 scaler, and the losses each phase was last given (``losses``:
    {phase: tensor}, for the log)."""

    def __init__(self, groups: dict[str, list], lr: float, betas=(0.5, 0.999), scaler=None,
                 device_type: str = "cpu") -> None:
        self.params = {phase: list(ps) for phase, ps in groups.items()}
        self.optimizers = {phase: torch.optim.Adam(ps, lr=lr, betas=tuple(betas)) for phase, ps in self.params.items()}
        self.scaler = scaler if scaler is not None else torch.amp.GradScaler(device_type, enabled=False)
        self.device_type = device_type
        self.losses: dict[str, torch.Tensor] = {}
        self.updated: list[str] = []  # phases updated since the last reset (one step)

    def update(self, phase: str, loss: torch.Tensor) -> bool:
        """Zero ``phase``'s gradients, backpropagate ``loss`` into its parameters only (scaled in
        fp16, outside autocast) and step its optimizer; False when the fp16 scaler skipped it."""
        opt = self.optimizers[phase]
        opt.zero_grad(set_to_none=True)
        params = [p for p in self.params[phase] if p.requires_grad]
        with torch.autocast(self.device_type, enabled=False):
            self.scaler.scale(loss).backward(inputs=params or None)
        stepped = True
        if self.scaler.is_enabled():
            self.scaler.unscale_(opt)
            grads = [p.grad for p in params if p.grad is not None]
            stepped = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()) if grads else True
        self.scaler.step(opt)
        self.losses[phase] = loss.detach()
        self.updated.append(phase)
        return stepped

    def set_lr(self, lr: float) -> None:
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr

    def state_dict(self) -> dict:
        return {phase: opt.state_dict() for phase, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        for phase, opt in self.optimizers.items():
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
    ``config`` (the recipe, read only). An objective that keeps its own step-dependent state
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

    def same_draw(self):
        """The augmentation's same-draw block (see the class docstring); a no-op without one."""
        return self.augmentation.same_draw() if self.augmentation is not None else contextlib.nullcontext()

    def __getitem__(self, phase: str) -> nn.Module:
        return self.phases[phase]

    def __iter__(self) -> Iterator[str]:
        return iter(self.phases)

    def __len__(self) -> int:
        return len(self.phases)
