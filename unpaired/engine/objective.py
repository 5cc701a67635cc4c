"""Objectives: what one training step computes and updates (CycleGAN, CUT, ...).

An objective is a plugin (``register_objectives``; the contract is in unpaired.hookspecs).
Its factory gets a :class:`Parts`: the recipe's generator, discriminator and loss choices,
ready to build, so that any registered architecture works with any objective. Networks come
out of ``parts`` initialised (``train.init``); an adversarial loss comes out as an
:class:`Adversarial`, whose ``judge`` is the one place a discriminator's loss gets the loss's
penalty. The engine (unpaired.engine.trainer, unpaired.engine.phases) keeps what every objective needs:
optimizers, the schedule, autocast and the fp16 scaler, freezing the other phases' networks,
DDP, compile, checkpoints, RNG, signals, events, evaluation.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, cast

import torch
from omegaconf import DictConfig
from torch import nn

from . import conditions
from ..recipe.config import plain
from ..errors import UnpairedError
from ..hookspecs import AdversarialLoss

log = logging.getLogger("unpaired")
ADVERSARIAL, RECONSTRUCTION = "adversarial", "reconstruction"
DIRECTIONS = ("a2b", "b2a")


def set_requires_grad(nets, flag: bool) -> None:
    """Switch gradients of ``nets``' parameters on or off. Objectives no longer need it: the
    engine's ``update(phase, loss)`` backpropagates into that phase's parameters alone."""
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def is_adversarial(loss) -> bool:
    """True for an :class:`unpaired.hookspecs.AdversarialLoss` (it has both methods)."""
    return isinstance(loss, AdversarialLoss) and callable(loss.generator_loss) and callable(loss.discriminator_loss)


class Adversarial:
    """The recipe's adversarial loss as an objective gets it from ``parts.loss(role)``.

    ``generator_loss(fake_logits)`` and ``discriminator_loss(real_logits, fake_logits)`` are the
    plugin's. ``judge(discriminator, real, fake)`` is a discriminator's whole loss:
    ``discriminator_loss(D(real), D(fake))`` plus the plugin's ``penalty(D, real, fake)`` when it
    has one (WGAN-GP's gradient penalty), ``fake`` detached. It is the one place a penalty is
    added: exactly once per call, so once per discriminator per update when every discriminator
    loss goes through it. The plugin's ``penalty`` is not exposed here, so an objective cannot add
    it a second time by hand; the engine refuses a step whose discriminator update had no
    ``judge`` call when the loss has a penalty.

    ``observers``: callables the engine adds (e.g. ADA's overfitting signal), given the real
    logits of every ``discriminator_loss`` and ``judge`` call. ``boundary``: the logit between
    "fake" and "real" (the plugin's ``boundary``, default 0; lsgan's 0.5).

    R1 (Mescheder et al. 2018): a loss with ``r1_gamma`` > 0 (every built-in adversarial loss
    takes it as a param) gets ``r1_gamma / 2 * mean_n ||grad_x D(x)||^2`` added by ``judge``
    (``D(x)``: the mean of an image's logits, :func:`r1_penalty`),
    ``x`` the real images as the discriminator sees them (after the recipe's augmentation, which
    is a forward pre-hook on it: the gradient is taken there), from the same forward as the real
    logits. With ``r1_every`` = k > 1 it is added at the steps k divides, times k (lazy
    regularisation, StyleGAN2); the engine says which steps (:meth:`at_step`).
    """

    def __init__(self, loss: AdversarialLoss, name: str, key: str) -> None:
        self.loss, self.name, self.key = loss, name, key
        self.has_penalty = callable(getattr(loss, "penalty", None))
        boundary = getattr(loss, "boundary", 0.0)
        if isinstance(boundary, bool) or not isinstance(boundary, (int, float)) or boundary != boundary:
            raise UnpairedError(f"{key}.name: loss {name!r} has a boundary {boundary!r}, not a number "
                                "(the logit between fake and real)")
        self.boundary = float(boundary)
        self.r1_gamma = float(getattr(loss, "r1_gamma", 0.0) or 0.0)
        self.r1_every = int(getattr(loss, "r1_every", 1) or 1)
        self.r1_now = self.r1_gamma > 0
        self.has_penalty = self.has_penalty or self.r1_gamma > 0
        self.observers: list[Callable[[torch.Tensor], None]] = []
        self.judged = 0  # judge() calls since the engine last reset the count
        self.penalties: list[torch.Tensor] = []  # this step's penalty values (logged as "penalty")

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return self.loss.generator_loss(fake_logits)

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        for observe in self.observers:
            observe(real_logits)
        return self.loss.discriminator_loss(real_logits, fake_logits)

    def at_step(self, index: int) -> None:
        """The engine's word at each step (``index``: steps done): is R1 due at this one?"""
        self.r1_now = self.r1_gamma > 0 and index % self.r1_every == 0

    def judge(self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """``discriminator``'s loss on ``real`` and ``fake`` images, with the loss's penalty
        (and R1 when due)."""
        fake = fake.detach()
        if self.r1_now:
            seen = _SeenInput()
            # the network itself, also when given as functools.partial(D, timestep=t) (UNSB)
            module = discriminator if isinstance(discriminator, nn.Module) else getattr(discriminator, "func", None)
            if isinstance(module, nn.Module):
                handle = module.register_forward_pre_hook(seen)  # after the augmentation's hook
                try:
                    real_logits = discriminator(real)
                finally:
                    handle.remove()
            else:  # a plain callable: the gradient at its input
                seen.input = real = real.detach().requires_grad_(True)
                real_logits = discriminator(real)
        else:
            real_logits = discriminator(real)
        loss = self.discriminator_loss(real_logits, discriminator(fake))
        self.judged += 1
        if callable(getattr(self.loss, "penalty", None)):
            penalty = getattr(self.loss, "penalty")(discriminator, real, fake)
            self.penalties.append(penalty.detach())
            loss = loss + penalty
        if self.r1_now:
            r1 = self.r1_gamma / 2 * self.r1_every * r1_penalty(real_logits, seen.input)
            self.penalties.append(r1.detach())
            loss = loss + r1
        return loss

    def __repr__(self) -> str:
        return f"Adversarial({self.name!r} at {self.key})"


class _SeenInput:
    """A forward pre-hook that keeps the image a discriminator is given (made a leaf that
    requires grad when it does not already), for R1's gradient."""

    def __init__(self) -> None:
        self.input: torch.Tensor | None = None

    def __call__(self, module: nn.Module, args: tuple) -> tuple | None:
        if self.input is not None or not args or not isinstance(args[0], torch.Tensor):
            return None
        x = args[0] if args[0].requires_grad else args[0].detach().requires_grad_(True)
        self.input = x
        return (x, *args[1:])


def r1_penalty(real_logits: torch.Tensor, seen: torch.Tensor | None) -> torch.Tensor:
    """mean over images of ||grad_x D(x)||^2, D(x) an image's score: the mean of its logits (a
    PatchGAN's patches, as the losses average them; one logit is its own mean), so ``r1_gamma``
    does not grow with the number of patches. Differentiable w.r.t. D's parameters (float32)."""
    if seen is None:
        raise UnpairedError("R1: the discriminator was not called with an image tensor first")
    scores = real_logits.float().reshape(len(real_logits), -1).mean(1)
    (grad,) = torch.autograd.grad(scores.sum(), seen, create_graph=True)
    return grad.float().flatten(1).pow(2).sum(1).mean()


class Objective(nn.Module):
    """An optional base class: the contract's defaults. Subclasses set ``translators`` and
    ``phases`` and define ``networks``, ``param_groups`` and ``train_step``."""

    losses: dict = {}  # role -> default {name, weight, params} or None (the recipe must choose)
    loss_kinds: dict = {}  # role -> "adversarial" | "reconstruction"
    translators: dict = {}
    phases: dict = {}
    sample_captions: dict = {}  # sample row -> its caption in figures (default: the direction in words)

    def networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def param_groups(self) -> dict[str, list]:
        raise NotImplementedError

    def train_step(self, step, a, b, update) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def translator(self, direction: str) -> nn.Module:
        """The module that translates ``direction`` (a2b | b2a): by default the network
        ``translators[direction]`` names. An objective whose translation is a procedure (several
        passes, noise) returns a module running it over its networks."""
        return self.networks()[self.translators[direction]]

    def samples(self, a, b):
        """Each direction's (real, translated) row."""
        out = {}
        for direction in self.translators:
            x = a if direction == "a2b" else b
            out[direction] = (x, translator_of(self, direction)(x))
        return out

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass


def translator_of(objective, direction: str) -> nn.Module:
    """``objective.translator(direction)``, or the network ``translators[direction]`` names for
    an objective without that method."""
    own = getattr(objective, "translator", None)
    if callable(own):
        return own(direction)
    return objective.networks()[objective.translators[direction]]


INIT_KINDS = ("normal", "xavier", "kaiming", "orthogonal", "none")


def init_weights(net: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """The reference's initialisation: conv/linear weights N(0, gain) (or xavier/kaiming/
    orthogonal), biases 0; affine norm weights N(1, gain). ``none`` keeps the plugin's."""
    if kind == "none":
        return net
    for m in net.modules():
        name = type(m).__name__
        weight = _raw_weight(m)
        if weight is not None and ("Conv" in name or "Linear" in name):
            if kind == "normal":
                nn.init.normal_(weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            elif kind == "orthogonal":
                nn.init.orthogonal_(weight, gain=gain)
            bias = getattr(m, "bias", None)
            if isinstance(bias, torch.Tensor):
                nn.init.zeros_(bias)
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def _raw_weight(m: nn.Module):
    """A layer's weight tensor, or the one under a parametrization (spectral norm)."""
    parametrizations = getattr(m, "parametrizations", None)
    if parametrizations is not None and "weight" in parametrizations:
        return parametrizations.weight.original
    return getattr(m, "weight", None) if isinstance(getattr(m, "weight", None), torch.Tensor) else None


class Unavailable(nn.Module):
    """Stands in, when a checkpoint is opened for inference, for a discriminator or a loss whose
    plugin is not installed: translation never calls it."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def forward(self, *args, **kwargs):
        raise UnpairedError(f"{self.what} is not installed; inference does not need it")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def generator_loss(self, *args):
        return self.forward()

    discriminator_loss = generator_loss


class Parts:
    """What an objective is built from (given to its factory as ``parts``).

    ``channels``: (channels of A, channels of B), from the data. ``generator(cin, cout)`` and
    ``discriminator(cin)``: new networks of the recipe's choice, initialised per ``train.init``
    (before the objective sees them, so weights it copies or sets stay as it leaves them);
    ``init(module)``: the same initialisation for a network the objective builds itself.
    ``loss(role)``: the recipe's ``losses.<role>`` (resolved against the objective's defaults,
    kind-checked; an adversarial one as an :class:`Adversarial`); ``weight(role)``: its weight.
    ``seed`` (``train.seed``) and ``rank`` (this process's index under torchrun) seed
    per-process randomness; ``config`` is the whole recipe (read only). ``conditions``: {kind:
    (condition, ...)} the objective needs its networks to take (its ``generator_conditions`` and
    ``discriminator_conditions``, unpaired.engine.conditions): every network built here is checked.

    ``purpose="inference"``: a checkpoint opened to translate. Weights are loaded afterwards, so
    nothing is initialised; discriminators are built on the ``meta`` device (no memory), and a
    discriminator or loss whose plugin is not installed is :class:`Unavailable`.
    """

    def __init__(self, cfg: DictConfig, registry, channels, objective_name: str, loss_kinds=None,
                 losses: dict | None = None, rank: int = 0, purpose: str = "train",
                 conditions: dict | None = None) -> None:
        self.config, self.registry = cfg, registry
        self.channels = tuple(int(c) for c in channels)
        self.seed, self.rank = int(cfg.train.seed), rank
        self.objective_name = objective_name
        self.loss_kinds = dict(loss_kinds or {})
        self.losses = dict(losses or {})  # role -> {name, weight, params}, resolved (assemble.resolve_losses)
        self.purpose = purpose
        self.conditions = dict(conditions or {})  # kind -> conditions its networks must take
        self.built: dict[int, tuple] = {}  # id(network) -> ("generator", cin, cout) | ("discriminator", cin)
        self.unaugmented: set[int] = set()  # ids of discriminators built with augment=False
        self.adversarial: list[Adversarial] = []  # every adversarial loss handed out
        self._sized: set = set()

    @property
    def inference(self) -> bool:
        return self.purpose == "inference"

    def generator(self, in_channels: int, out_channels: int) -> nn.Module:
        return self._network("generator", in_channels=in_channels, out_channels=out_channels)

    def discriminator(self, in_channels: int, augment: bool = True) -> nn.Module:
        """The recipe's discriminator for ``in_channels``. ``augment=False``: a network of that
        shape that does not judge real against generated images (UNSB's energy network over
        image pairs): the recipe's augmentation is not hooked onto it."""
        net = self._network("discriminator", in_channels=in_channels)
        if not augment:
            self.unaugmented.add(id(net))
        return net

    def init(self, module: nn.Module) -> nn.Module:
        """``module`` initialised as the recipe says (``train.init``, ``train.init_gain``)."""
        if not self.inference:
            init_weights(module, self.config.train.init, self.config.train.init_gain)
        return module

    def _network(self, kind: str, **channels) -> nn.Module:
        from ..runtime.probe import check_size

        choice = self.config[kind]
        record = (kind, *channels.values())
        if self.inference and kind == "discriminator" and choice.name not in self.registry.names(kind):
            return self._record(Unavailable(f"discriminator {choice.name!r}"), record)

        def build():
            return self.registry.create(kind, choice.name, plain(choice.params), key=kind, **channels)

        if self.inference and kind == "discriminator":
            try:
                with torch.device("meta"):  # never run at inference: no memory for it
                    return self._record(self._checked(build(), kind, choice.name), record)
            except UnpairedError as exc:  # e.g. a pretrained backbone's package missing: not needed here
                return self._record(Unavailable(f"discriminator {choice.name!r} ({exc})"), record)
            except Exception:
                pass
        if record not in self._sized:  # counted on the meta device, before any memory is allocated
            check_size(build, kind, choice.name)
            self._sized.add(record)
        net = self._checked(build(), kind, choice.name)
        return self._record(self.init(net), record)

    def _checked(self, net, kind, name):
        if not isinstance(net, nn.Module):
            raise UnpairedError(f"{kind}.name: {name!r} built a {type(net).__name__}, not a torch nn.Module")
        needs = self.conditions.get(kind, ())
        if needs:
            conditions.check(net, kind, needs, self.objective_name, name, self.registry.entry(kind, name).factory)
        return net

    def _record(self, net: nn.Module, record: tuple) -> nn.Module:
        self.built[id(net)] = record
        return net

    def kind_of(self, net: nn.Module) -> str | None:
        """"generator" or "discriminator" for a network these parts built, else None."""
        return self.built.get(id(net), (None,))[0]

    def loss(self, role: str):
        choice = self.losses.get(role)
        if choice is None or choice.get("name") is None:
            raise UnpairedError(f"losses.{role}.name: objective {self.objective_name!r} asks for a {role!r} "
                                "loss and the recipe chooses none; set it, e.g. losses." + role + ".name=l1")
        name, key = choice["name"], f"losses.{role}"
        if self.inference and name not in self.registry.names("loss"):
            return Unavailable(f"loss {name!r}")
        loss = self.registry.create("loss", name, dict(choice.get("params") or {}), key=key)
        kind = self.loss_kinds.get(role)
        if kind == ADVERSARIAL and not is_adversarial(loss):
            raise UnpairedError(f"{key}.name: loss {name!r} is a reconstruction loss; the {role} slot "
                                "needs one with generator_loss() and discriminator_loss() (e.g. bce, lsgan)")
        if kind == RECONSTRUCTION and is_adversarial(loss):
            raise UnpairedError(f"{key}.name: loss {name!r} is an adversarial loss; the {role} slot needs "
                                "a reconstruction loss called as loss(output, target) (e.g. l1)")
        if kind == RECONSTRUCTION and not callable(loss):
            raise UnpairedError(f"{key}.name: loss {name!r} is not callable as loss(output, target)")
        if is_adversarial(loss):
            loss = Adversarial(loss, name, key)
            self.adversarial.append(loss)
        return loss

    def weight(self, role: str) -> float:
        choice = self.losses.get(role)
        return 1.0 if choice is None or choice.get("weight") is None else float(choice["weight"])


def check_objective_shape(objective: Any, name: str, parts: Parts) -> None:
    """The contract's structure, checked once at build time: errors name the objective."""
    where = f"objective.name: objective {name!r}"
    if not isinstance(objective, nn.Module):
        raise UnpairedError(f"{where} built a {type(objective).__name__}, not a torch nn.Module")
    objective = cast(Any, objective)  # a plugin's module: its methods are the contract's, not nn.Module's
    for attr in ("networks", "param_groups", "train_step", "samples"):
        if not callable(getattr(objective, attr, None)):
            raise UnpairedError(f"{where} has no method {attr}() (see register_objectives in unpaired/hookspecs.py)")
    nets = objective.networks()
    translators = getattr(objective, "translators", None)
    if not isinstance(translators, dict) or "a2b" not in translators or set(translators) - set(DIRECTIONS):
        raise UnpairedError(f"{where}: translators must map 'a2b' (and optionally 'b2a') to network names, "
                            f"got {translators!r}")
    for direction, net_name in translators.items():
        net = nets.get(net_name)
        if net is None or parts.kind_of(net) != "generator":
            raise UnpairedError(f"{where}: translators[{direction!r}] = {net_name!r} must name one of its "
                                f"networks() made by parts.generator(); networks: {', '.join(nets)}")
    groups = objective.param_groups()
    phases = getattr(objective, "phases", None)
    if not isinstance(phases, dict) or set(phases) != set(groups):
        raise UnpairedError(f"{where}: phases ({', '.join(phases or {})}) and param_groups() "
                            f"({', '.join(groups)}) must name the same phases")
    seen: dict[int, str] = {}
    for phase, params in groups.items():
        for p in params:
            if id(p) in seen:
                raise UnpairedError(f"{where}: a parameter is in param groups {seen[id(p)]!r} and {phase!r}")
            seen[id(p)] = phase
    missing = [n for n, net in nets.items() for p in net.parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        raise UnpairedError(f"{where}: trainable parameters of {', '.join(sorted(set(missing)))} are in no "
                            "param group (no optimizer would train them)")
