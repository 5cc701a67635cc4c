"""The plugin contract: hook specifications of the ``unpaired`` pluggy project.

A plugin is a module (or any object) with functions marked ``@unpaired.hookimpl`` whose
names are the hooks below. Each registration hook is called once, with one keyword
argument ``register``: a callable ``register(name, factory, help="")``. Implementations
must take exactly the argument named here, with no default value.

Names are unique across all plugins and kinds share no namespace rules beyond that:
registering a name that another plugin already registered for the same kind is an error
that names both plugins.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import pluggy
from torch import Tensor

PROJECT = "unpaired"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- the shapes of the contract, for readers and type checkers ------------------------------
class Register(Protocol):
    """What every registration hook receives: ``register(name, factory, help="")``."""

    def __call__(self, name: str, factory: Callable[..., Any], help: str = "") -> None: ...


@runtime_checkable
class AdversarialLoss(Protocol):
    """An adversarial loss (scalar tensors; logits are whatever a discriminator returns). It may
    also define ``penalty(discriminator, real, fake) -> Tensor``, added to each discriminator's
    loss (e.g. a gradient penalty)."""

    def generator_loss(self, fake_logits: Tensor) -> Tensor: ...

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor: ...


class ReconstructionLoss(Protocol):
    """Any other loss: ``loss(output, target) -> Tensor`` (scalar), e.g. cycle and identity."""

    def __call__(self, output: Tensor, target: Tensor) -> Tensor: ...


class Generator(Protocol):
    """An ``nn.Module`` mapping (N, Cin, H, W) to (N, Cout, H, W) in [-1, 1] for H, W multiples
    of 4. Optional capabilities the engine uses when present:

    * ``size_multiple: int`` — the multiple inference pads images to (default 4).
    * ``features(x, layers) -> list[Tensor]`` — encoder activations at named layers, in the
      order asked (CUT's PatchNCE reads them); unknown names raise UnpairedError listing the
      generator's layer names.
    """

    def __call__(self, x: Tensor) -> Tensor: ...


@hookspec
def register_generators(register: Register) -> None:
    """Register generator architectures.

    ``register(name, factory, help="")`` where ``factory(in_channels, out_channels, **params)``
    returns an ``nn.Module`` mapping ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)``
    with values in [-1, 1], for any H and W that are multiples of 4. Recipe ``params`` are
    passed as keyword arguments and checked against the factory's signature first.
    """


@hookspec
def register_discriminators(register: Register) -> None:
    """Register discriminator architectures.

    ``register(name, factory, help="")`` where ``factory(in_channels, **params)`` returns an
    ``nn.Module`` mapping ``(N, in_channels, H, W)`` to raw logits (no sigmoid), either a
    patch map ``(N, 1, h, w)`` or one logit per image ``(N, 1)``.
    """


@hookspec
def register_losses(register: Register) -> None:
    """Register losses.

    ``register(name, factory, help="")`` where ``factory(**params)`` returns either

    * an **adversarial** loss: an object with ``generator_loss(fake_logits) -> Tensor`` and
      ``discriminator_loss(real_logits, fake_logits) -> Tensor`` (scalar tensors; the logits
      are whatever a discriminator returns), or
    * a **reconstruction** loss: any other callable ``(output, target) -> Tensor`` (scalar),
      used for the cycle and identity terms.

    An adversarial loss may also define ``penalty(discriminator, real, fake) -> Tensor``
    (e.g. a gradient penalty): the engine adds it to each discriminator's loss, with
    ``real`` and ``fake`` the images that discriminator judged (fake detached).

    No base class is needed. A recipe that puts one kind in the other's slot is an error.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets of unpaired images.

    ``register(name, factory, help="")`` where ``factory(**params)`` returns a
    ``torch.utils.data.Dataset`` whose items are dicts ``{"A": Tensor[C, H, W],
    "B": Tensor[C, H, W]}`` with values in [-1, 1]. Extra keys may ride along; ``A_path`` and
    ``B_path`` (the source files, as strings) are used when present: evaluation counts each
    image once by path and matches ``--truth`` files by the A file's name. Its length is the number of pairs in one epoch. A dataset whose items are aligned
    pairs (B is A's true translation) says so with an attribute ``paired = True``:
    evaluation then scores translations against the truth (PSNR, SSIM, L1). The engine seeds Python's,
    NumPy's and torch's random generators before each item, so an item's randomness
    (crops, flips, which B) is reproducible and resumable without any work in the plugin.
    """


@hookspec
def register_feature_extractors(register: Register) -> None:
    """Register feature extractors for distribution metrics (FID, KID).

    ``register(name, factory, help="")`` where ``factory(**params)`` returns an ``nn.Module``
    mapping images ``(N, 3, H, W)`` in [-1, 1] (any size; it resizes itself) to features
    ``(N, D)``, with a ``dim`` attribute giving D. Only the built-in ``inception`` gives
    numbers comparable with published FIDs.
    """


@hookspec
def register_objectives(register: Register) -> None:
    """Register training objectives (CycleGAN, CUT, ...): what one step computes and updates.

    ``register(name, factory, help="")`` where ``factory(parts, **params)`` returns an
    :class:`unpaired.objective.Objective` (an ``nn.Module``; subclassing is optional) with:

    * ``networks() -> {name: nn.Module}``: every network with weights, built through ``parts``
      (the engine initialises them per ``train.init``, moves them to the device, compiles them,
      saves them under these names in checkpoints).
    * ``translators``: ``{"a2b": name, "b2a": name}`` — which of those networks translate which
      direction (made by ``parts.generator``); a one-sided objective gives only ``"a2b"``.
    * ``param_groups() -> {phase: [parameters]}``: the engine makes one Adam optimizer per phase
      (``train.lr``, ``train.betas``, the learning-rate schedule); together they hold every
      trainable parameter, each once.
    * ``phases``: ``{phase: nn.Module}``: the module whose ``forward`` each phase calls once per
      step; under torchrun the engine wraps it in DistributedDataParallel.
    * ``train_step(run, a, b, update) -> {term: Tensor}``: one step on real batches ``a``, ``b``.
      Call ``run[phase](...)`` (the phase module or its DDP wrapper) for each phase's forward, and
      ``update(phase, loss)`` to zero that phase's gradients, backpropagate (scaled under fp16, outside
      autocast) and step its optimizer, in the objective's own order. Return the loss terms as
      tensors (the engine averages and logs them; it reads them back only at log steps).
    * ``samples(a, b) -> {row: (Tensor, ...)}``: rows of a sample grid (e.g. ``{"a2b": (a, fake_b,
      rec_a)}``), images in [-1, 1]; called in eval mode without gradients.
    * ``extra_state() -> dict`` and ``load_extra_state(state)``: state of this process that is
      not in the networks (e.g. history pools), saved per rank in checkpoints.

    Class attributes of the factory declare what it reads from the recipe: ``losses = {role:
    default}`` (default a dict ``{name, weight, params}`` or None when the recipe must choose),
    and ``loss_kinds = {role: "adversarial" | "reconstruction"}``. ``parts`` (an
    :class:`unpaired.objective.Parts`) gives ``channels``, ``generator(cin, cout)``,
    ``discriminator(cin)``, ``loss(role)``, ``weight(role)``, ``seed``, ``rank`` and ``config``.
    Recipe ``objective.params`` are passed as keyword arguments, checked against the factory's
    signature first.
    """


# --- training events ------------------------------------------------------------------------
# Called on every plugin that implements them, in the training process (rank 0 only when
# several processes train together). ``run`` is a RunInfo (unpaired.events): ``config`` (the
# resolved recipe), ``out_dir`` (Path), ``start_step``, ``total_steps``, ``device`` and
# ``model`` (the objective: see register_objectives). Events must not change the model or
# the step. The engine's own outputs (progress display, metrics.csv, sample PNGs)
# are plugins of these events; a recipe turns plugins off with ``disable_plugins``.


@hookspec
def on_train_start(run):
    """Training starts (or resumes at ``run.start_step``)."""


@hookspec
def on_step(run, step):
    """After every optimisation step (``step`` counts completed steps). Keep it cheap: it
    runs in the training loop. Loss values are not read back here (see on_log)."""


@hookspec
def on_log(run, step, metrics):
    """Every ``train.log_every`` steps (and at the last): ``metrics`` is a dict of floats —
    ``epoch``, ``lr``, ``it_per_s``, each phase's loss as its optimizer got it (``loss_g``,
    ``loss_d``: the phases' names) and each of the objective's loss terms averaged since the
    previous call (cyclegan: ``g_adv_ab``, ``g_adv_ba``, ``cycle_a``, ``cycle_b``, ``idt_a``,
    ``idt_b``, ``g_total``, ``d_a``, ``d_b``; cut: ``d``, ``g_adv``, ``nce``, ``nce_idt``,
    ``g_total``), plus evaluation metrics on the steps where they are computed."""


@hookspec
def on_sample(run, step, images):
    """Every ``train.sample_every`` steps (and at the last): ``images`` is a dict of CPU
    tensors in [0, 1]: ``grid`` (3, H, W) — a row per image of each of the objective's sample
    rows — and those rows by name, tuples of (N, C, h, w) batches (cyclegan: ``a2b``, ``b2a``,
    each (real, translated, reconstructed); cut: ``a2b`` (real, translated), ``idt_b``)."""


@hookspec
def on_checkpoint(run, step, path):
    """A checkpoint was written (atomically) to ``path``: ``checkpoints/latest.pt``, or a
    step ``train.keep_every`` keeps (``checkpoints/step_<N>.pt``). When both fall on one step,
    both files are on disk before the first of the two events."""


@hookspec
def on_train_end(run, step, interrupted):
    """Training ended at ``step``; ``interrupted`` is the signal's name ("SIGINT",
    "SIGTERM") when stopped by one, else "". Called after an exception too."""
