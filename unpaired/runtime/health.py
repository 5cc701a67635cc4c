"""A run's health: non-finite losses or weights stop it before they reach a checkpoint.

Losses are checked at log steps, on the means the loop has already brought to the host (no
extra synchronisation per step); weights are checked before each checkpoint is written, so a
diverged run never overwrites the last good ``latest.pt``. Huge but finite losses (a
learning rate far too high) get one warning.
"""
import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import UnpairedError

log = logging.getLogger("unpaired")

NOT_LOSSES = ("epoch", "lr", "it_per_s")
DIVERGING = 50.0  # a loss this many times its first logged value (and above DIVERGING_FLOOR)
DIVERGING_FLOOR = 100.0


class Diverged(UnpairedError):
    """Training produced non-finite values; the last good checkpoint is named."""


class Health:
    """Tracks the last checkpoint known good (its path and step) and checks each log and each
    checkpoint-to-be."""

    def __init__(self, ckpt_path: str | os.PathLike, saved_step: int | None = None) -> None:
        self.ckpt_path = ckpt_path
        self.saved_step = saved_step  # step of the checkpoint on disk (None: none written yet)
        self.first: dict[str, float] = {}  # loss_<phase> -> its first logged value in this process
        self.warned = False

    def saved(self, step: int) -> None:
        self.saved_step = step

    def last_good(self) -> str:
        if self.saved_step is None:
            return "no checkpoint had been written yet"
        return (f"the last good checkpoint, {self.ckpt_path} (step {self.saved_step}), is intact; "
                f"continue from it with --resume")

    def check_metrics(self, step: int, metrics: Mapping[str, Any], lr: float | None = None) -> None:
        """Raise Diverged when a logged loss is NaN or infinite; warn once on a huge one."""
        bad = {k: v for k, v in metrics.items() if k not in NOT_LOSSES and not math.isfinite(v)}
        if bad:
            terms = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
            raise Diverged(f"training diverged: non-finite loss at step {step} ({terms}); nothing was written "
                           f"after it: {self.last_good()}. Lower train.lr (now {lr}) or check the data "
                           "and the loss weights")
        for key, value in metrics.items():  # each phase's loss against its first logged value
            if not key.startswith("loss_"):
                continue
            first = self.first.setdefault(key, abs(value))
            if not self.warned and abs(value) > max(DIVERGING * first, DIVERGING_FLOOR):
                self.warned = True
                log.warning("training may be diverging: %s %.4g at step %d against %.4g when this run started; "
                            "a lower train.lr (now %s) usually helps", key, value, step, first, lr)

    def check_weights(self, step: int, nets: Mapping[str, nn.Module]) -> None:
        """Raise Diverged when any weight or buffer is NaN or infinite (before a checkpoint)."""
        for name, net in nets.items():
            flags = [torch.isfinite(t).all() for t in list(net.parameters()) + list(net.buffers())
                     if t.is_floating_point()]
            if flags and not bool(torch.stack(flags).all()):
                raise Diverged(f"training diverged: the weights of {name} hold NaN or infinite values at step "
                               f"{step}; the checkpoint was not written: {self.last_good()}. Lower train.lr "
                               "or check the data and the loss weights")
