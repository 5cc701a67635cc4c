"""The averaged generator (``train.ema``): an exponential moving average of the weights of every
network an objective translates with (its ``translators``), kept by the engine for any objective.

After each optimizer step of a phase that trains one of those networks, every averaged tensor
moves towards the trained one: ``avg <- avg + (1 - d) (w - avg)`` with the decay of update
``n`` (counted from 0)

    d_n = min(decay, (1 + n) / (10 + n))

the warm-up of TensorFlow's ``ExponentialMovingAverage(num_updates=...)``: the first updates
nearly copy the weights (d_0 = 0.1), so the random initial weights are not frozen into the
average for the ~1 / (1 - decay) steps a fixed decay would keep them; after n updates the
average spans roughly the last tenth of training, until ``decay`` caps it (n = 9,991 for 0.999).
The rule depends on the update count alone, which the checkpoint stores: resume is exact.

Buffers (batch-norm running statistics, counters) are copied from the trained network, not
averaged, as StyleGAN2-ADA does: a running mean of running means lags twice. Weights are the
same on every rank under torchrun (DDP keeps the trained ones equal, and the update is the same
arithmetic), so the average is too.

Samples, evaluation during training and every checkpoint reader use the average; the trainer
lends it to the networks for a block (:meth:`Averaged.lent`), so an objective whose translation
is a procedure over several networks (UNSB's sampler) translates with it unchanged.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..errors import UnpairedError

WARMUP = 10  # d_n = min(decay, (1 + n) / (WARMUP + n))


class Averaged:
    """The average of ``nets`` ({name: trained network}) with ``decay``; ``updates``: how many
    updates it has had (the warm-up's n)."""

    def __init__(self, nets: dict[str, nn.Module], decay: float) -> None:
        self.nets = dict(nets)
        self.decay = float(decay)
        self.updates = 0
        self.params: set[int] = set()  # ids of the trained parameters: a phase that steps one updates the average
        self.weights: dict[str, dict[str, torch.Tensor]] = {}
        for name, net in self.nets.items():
            self.weights[name] = {k: v.detach().clone() for k, v in net.state_dict().items()}
            self.params.update(id(p) for p in net.parameters())

    @torch.no_grad()
    def restart(self) -> None:
        """The average starts again from the networks' weights now (``updates`` 0)."""
        for name, net in self.nets.items():
            for k, v in net.state_dict().items():
                self.weights[name][k].copy_(v)
        self.updates = 0

    def trains(self, params: list) -> bool:
        """True when ``params`` (a phase's) include a parameter of an averaged network."""
        return any(id(p) in self.params for p in params)

    def current_decay(self) -> float:
        n = self.updates
        return min(self.decay, (1.0 + n) / (WARMUP + n))

    @torch.no_grad()
    def update(self) -> None:
        """One step of the average towards the trained weights (buffers copied)."""
        weight = 1.0 - self.current_decay()
        for name, net in self.nets.items():
            avg = self.weights[name]
            params = dict(net.named_parameters())
            for key, value in net.state_dict().items():
                if key in params and value.is_floating_point():
                    avg[key].lerp_(value.detach().to(avg[key].dtype), weight)
                else:
                    avg[key].copy_(value)
        self.updates += 1

    @contextlib.contextmanager
    def lent(self) -> Iterator[None]:
        """A block in which the networks hold the averaged weights (the trained ones are put back
        after it, exactly)."""
        kept = {}
        with torch.no_grad():
            for name, net in self.nets.items():
                state = net.state_dict()
                kept[name] = {k: v.detach().clone() for k, v in state.items()}
                for k, v in state.items():
                    v.copy_(self.weights[name][k])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, net in self.nets.items():
                    for k, v in net.state_dict().items():
                        v.copy_(kept[name][k])

    def state_dict(self) -> dict:
        """The checkpoint's ``averaged`` (unpaired.store.format): decay, updates, weights by network."""
        return {"decay": self.decay, "updates": self.updates,
                "nets": {name: dict(weights) for name, weights in self.weights.items()}}

    def load_state_dict(self, state: dict, path: str = "") -> None:
        """The average a checkpoint holds; the networks must be the same ones."""
        for name in self.nets:
            saved = (state.get("nets") or {}).get(name)
            if not isinstance(saved, dict) or set(saved) != set(self.weights[name]):
                raise UnpairedError(f"checkpoint {path}: its averaged generator (train.ema) has no weights that "
                                    f"fit network {name!r}; it is damaged")
            with torch.no_grad():
                for k, v in self.weights[name].items():
                    v.copy_(saved[k])
        self.updates = int(state.get("updates", 0))

    def to(self, device: torch.device) -> "Averaged":
        self.weights = {name: {k: v.to(device) for k, v in w.items()} for name, w in self.weights.items()}
        return self


def translating_networks(objective: Any) -> dict[str, nn.Module]:
    """{name: network} of the networks ``objective.translators`` names."""
    nets = objective.networks()
    return {name: nets[name] for name in dict.fromkeys(objective.translators.values())}
