"""Contract checks for plugin authors: the same checks the project runs on its built-ins.

Each ``check_*`` builds the plugin with the given params and raises ``AssertionError`` with
a message saying what broke; it needs no test framework. ``factory`` is either the factory
itself or a registered name (then the installed plugin's factory is checked, and ``params``
are checked against its signature first, as a recipe's are)::

    from unpaired.testing import check_generator, check_loss

    def test_my_generator():
        check_generator(my_generator, width=8)       # the factory, small params
        check_generator("my_generator", width=8)     # as registered through the entry point

    def test_my_loss():
        check_loss("my_loss")

    def test_my_augmentation():
        check_augmentation("my_augmentation", strength=0.5)

Objectives are checked with small built-in networks (``generator=``, ``discriminator=``:
(name, params) of registered ones) on one tiny batch::

    check_objective("my_objective", lambda_x=2.0)
    check_objective(MyObjective, generator=("unet", {"ngf": 8}))

Generators are checked on several channel counts and image sizes (multiples of 4, square
and not); pass ``sizes=`` for an architecture that needs other multiples (a U-Net needs
multiples of 2**num_downs). ``sizes``, ``channels`` (and ``items`` of ``check_dataset``) are
options of the checks, not params, so a factory param of the same name can't be passed here.
"""
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from .runtime import contract

if TYPE_CHECKING:
    from .engine.assemble import Assembly
    from .hookspecs import AdversarialLoss, ReconstructionLoss

__all__ = [
    "check_generator",
    "check_discriminator",
    "check_loss",
    "check_dataset",
    "check_feature_extractor",
    "check_objective",
    "check_augmentation",
]

GENERATOR_CHANNELS = ((3, 3), (1, 3), (3, 1))
GENERATOR_SIZES = ((32, 32), (32, 48), (36, 44))
DISCRIMINATOR_CHANNELS = (3, 1)
DISCRIMINATOR_SIZES = ((64, 64), (64, 48))
FEATURE_SIZES = ((48, 40), (32, 32))
BATCH = 2


def check_generator(factory: Callable[..., Any] | str, *, channels: Iterable[tuple[int, int]] = GENERATOR_CHANNELS,
                    sizes: Sequence[tuple[int, int]] = GENERATOR_SIZES, **params: Any) -> None:
    """``factory(in_channels, out_channels, **params)`` -> an nn.Module mapping (N, Cin, H, W)
    to (N, Cout, H, W) in [-1, 1], finite, with gradients reaching every trainable parameter
    and the input; for each (Cin, Cout) in ``channels`` and (H, W) in ``sizes``."""
    factory, label = _resolve("generator", factory, params)
    for cin, cout in channels:
        torch.manual_seed(0)
        g = _build(factory, label, params, in_channels=cin, out_channels=cout)
        where = f"{label} ({cin}->{cout} channels)"
        for h, w in sizes:
            x = _images(BATCH, cin, h, w).requires_grad_(True)
            y = _forward(g, x, where)
            problem = contract.generator_output(x, y, cout)  # the rule the engine's probe applies
            _expect(problem is None, f"{where}: {problem}; the plugin contract: {contract.GENERATOR}")
            _finite(y, f"{where}: output on {h}x{w}")
            _expect(y.min() >= -1 and y.max() <= 1,
                    f"{where}: outputs range [{y.min():.3g}, {y.max():.3g}], not within [-1, 1] (end with tanh)")
        _gradients_flow(g, x, y.mean(), where)


def check_discriminator(factory: Callable[..., Any] | str, *, channels: Iterable[int] = DISCRIMINATOR_CHANNELS,
                        sizes: Sequence[tuple[int, int]] = DISCRIMINATOR_SIZES, **params: Any) -> None:
    """``factory(in_channels, **params)`` -> an nn.Module mapping (N, C, H, W) to raw logits
    (N, 1, h, w) or (N, 1): finite, of both signs (no sigmoid), with gradients reaching every
    trainable parameter and the input; for each C in ``channels`` and (H, W) in ``sizes``."""
    factory, label = _resolve("discriminator", factory, params)
    for cin in channels:
        torch.manual_seed(0)
        d = _build(factory, label, params, in_channels=cin)
        where = f"{label} ({cin} channels)"
        for h, w in sizes:
            x = _images(BATCH, cin, h, w).requires_grad_(True)
            out = _forward(d, x, where)
            problem = contract.discriminator_output(x, out)  # the rule the engine's probe applies
            _expect(problem is None, f"{where}: {problem}; the plugin contract: {contract.DISCRIMINATOR}")
            _finite(out, f"{where}: logits on {h}x{w}")
            _expect((out < 0).any() and (out > 0).any(),
                    f"{where}: all logits have one sign ({out.min():.3g}..{out.max():.3g}); "
                    "return raw logits, not probabilities")
        _gradients_flow(d, x, out.mean(), where)


def check_loss(factory: Callable[..., Any] | str, **params: Any) -> None:
    """``factory(**params)`` -> an adversarial loss (``generator_loss`` and
    ``discriminator_loss``, told apart as the engine does) or a reconstruction loss
    (a callable ``(output, target)``). Both return finite scalars that gradients flow through;
    an adversarial loss rewards a generator whose fakes the discriminator calls real and a
    discriminator that tells real from fake, on patch maps and on (N, 1) logits; its optional
    ``penalty(discriminator, real, fake)`` is a finite scalar reaching D's parameters.
    A reconstruction loss is positive for different images and 0 for equal ones."""
    from .engine.objective import is_adversarial

    factory, label = _resolve("loss", factory, params)
    loss = _build(factory, label, params)
    if is_adversarial(loss):
        _check_adversarial(loss, label)
    else:
        _check_reconstruction(loss, label)


def check_dataset(factory: Callable[..., Any] | str, *, items: Iterable[int] = (0, -1), **params: Any) -> None:
    """``factory(**params)`` -> a torch Dataset, non-empty, whose items (those at indices
    ``items``) are dicts with "A" and "B" float32 tensors (C, H, W) in [-1, 1], H and W
    multiples of 4."""
    factory, label = _resolve("dataset", factory, params)
    torch.manual_seed(0)
    ds = _build(factory, label, params)
    _expect(isinstance(ds, torch.utils.data.Dataset), f"{label}: built a {type(ds).__name__}, not a torch Dataset")
    n = len(ds)
    _expect(n > 0, f"{label}: the dataset is empty")
    for index in items:
        index = index % n
        item = ds[index]
        problem = contract.dataset_item(item)  # the rule the engine's probe applies
        _expect(problem is None, f"{label}[{index}] {problem}; the plugin contract: {contract.DATASET}")
        for domain in ("A", "B"):
            t = item[domain]
            where = f"{label}[{index}][{domain!r}]"
            _expect(t.dtype == torch.float32, f"{where}: dtype {t.dtype}, expected float32")
            _finite(t, where)
            _expect(t.min() >= -1 and t.max() <= 1, f"{where}: values [{t.min():.3g}, {t.max():.3g}], not in [-1, 1]")


def check_feature_extractor(factory: Callable[..., Any] | str, *, sizes: Iterable[tuple[int, int]] = FEATURE_SIZES,
                            **params: Any) -> None:
    """``factory(**params)`` -> an nn.Module with an int ``dim`` D mapping images (N, 3, H, W)
    in [-1, 1] of any size to finite features (N, D), the same for the same images."""
    factory, label = _resolve("feature_extractor", factory, params)
    net = _build(factory, label, params)
    dim = getattr(net, "dim", None)
    _expect(isinstance(dim, int) and dim > 0, f"{label}: needs an int attribute dim > 0, has {dim!r}")
    for i, (h, w) in enumerate(sizes):
        x = _images(BATCH, 3, h, w)
        with torch.no_grad():
            f = _forward(net, x, label)
        _expect(isinstance(f, torch.Tensor) and tuple(f.shape) == (BATCH, dim),
                f"{label}: images {tuple(x.shape)} gave {tuple(getattr(f, 'shape', ()))}, expected {(BATCH, dim)}")
        _finite(f, f"{label}: features of {h}x{w} images")
        if i == 0:  # an image's features don't depend on the call or the batch (frozen, eval mode)
            with torch.no_grad():
                alone = net(x[:1])
            _expect(torch.allclose(f[:1], alone, rtol=1e-4, atol=1e-5),
                    f"{label}: an image's features change with the call or the batch (eval mode?)")


def check_constraint(factory: Callable[..., Any] | str, *, channels: int = 3, classes: int | None = 3,
                     size: tuple[int, int] = (32, 32), **params: Any) -> Any:
    """``factory(channels, classes, **params)`` -> a constraint (register_constraints in
    unpaired.hookspecs): ``domain`` "A" or "B", a bool ``needs_labels``, and
    ``generator_loss(real, translated, labels)`` a finite scalar whose gradient reaches the
    translation; with ``networks()`` and ``train_loss(real, labels)``, nn.Modules and a finite
    scalar whose gradient reaches their parameters. ``classes``: None for a constraint without
    labels. Returns the constraint."""
    factory, label = _resolve("constraint", factory, params)
    c = factory(channels=channels, classes=classes, **params)
    _expect(getattr(c, "domain", None) in ("A", "B"), f"{label}: domain is {getattr(c, 'domain', None)!r}, not A or B")
    _expect(isinstance(getattr(c, "needs_labels", None), bool), f"{label}: needs_labels must be a bool")
    torch.manual_seed(0)
    real = _images(BATCH, channels, *size)
    translated = _images(BATCH, channels, *size).requires_grad_(True)
    labels = torch.randint(classes, (BATCH, *size)) if classes else None
    term = c.generator_loss(real, translated, labels)
    _scalar(term, f"{label}: generator_loss")
    if term.requires_grad:
        term.backward()
    _expect(translated.grad is not None and translated.grad.abs().sum() > 0,
            f"{label}: generator_loss gives the translation no gradient: it cannot steer the generator")
    nets = c.networks() if callable(getattr(c, "networks", None)) else None
    if nets is not None:
        _expect(callable(getattr(c, "train_loss", None)), f"{label}: has networks() but no train_loss(real, labels)")
        _expect(isinstance(nets, dict) and nets and all(isinstance(n, nn.Module) for n in nets.values()),
                f"{label}: networks() must be a dict of nn.Modules")
        loss = c.train_loss(real, labels)
        _scalar(loss, f"{label}: train_loss")
        loss.backward()
        params_ = [p for n in nets.values() for p in n.parameters() if p.requires_grad]
        _expect(params_ and all(p.grad is not None for p in params_),
                f"{label}: train_loss leaves parameters of its networks without a gradient")
    return c


def check_backbone(factory: Callable[..., Any] | str, *, size: int = 64, **params: Any) -> Any:
    """``factory(**params)`` -> a frozen backbone (register_backbones in unpaired.hookspecs): an
    nn.Module in eval mode with no trainable parameter, ``feature_channels``, ``sha256`` (a str),
    and ``features(x)`` giving one map per channel count (finite, ``feature_channels[i]``
    channels, from fine to coarse) through which gradients reach the images. Returns it."""
    factory, label = _resolve("backbone", factory, params)
    net = factory(**params)
    _expect(isinstance(net, nn.Module), f"{label}: built a {type(net).__name__}, not an nn.Module")
    _expect(not net.training, f"{label}: must come in eval mode (its batch norms keep their statistics)")
    _expect(not any(p.requires_grad for p in net.parameters()), f"{label}: has trainable parameters; freeze them")
    _expect(isinstance(getattr(net, "sha256", None), str), f"{label}: needs a str sha256 (its weights' digest)")
    channels = tuple(getattr(net, "feature_channels", ()))
    x = _images(BATCH, 3, size, size).requires_grad_(True)
    maps = net.features(x)
    _expect(isinstance(maps, (list, tuple)) and len(maps) == len(channels) > 0,
            f"{label}: features(x) gave {len(maps) if isinstance(maps, (list, tuple)) else maps!r} maps, "
            f"feature_channels says {len(channels)}")
    sides = []
    for i, (m, c) in enumerate(zip(maps, channels)):
        _expect(m.shape[:2] == (BATCH, c), f"{label}: map {i} has shape {tuple(m.shape)}, expected {c} channels")
        _finite(m, f"{label}: map {i}")
        sides.append(m.shape[-1])
    _expect(sides == sorted(sides, reverse=True), f"{label}: maps must go from fine to coarse, got sides {sides}")
    sum(m.float().mean() for m in maps).backward()
    _expect(x.grad is not None and x.grad.abs().sum() > 0, f"{label}: gradients do not reach the images")
    return net


def check_augmentation(factory: Callable[..., Any] | str, *, channels: Iterable[int] = (3, 1),
                       sizes: Sequence[tuple[int, int]] = ((32, 32), (32, 48)), **params: Any) -> Any:
    """``factory(**params)`` -> an augmentation (register_augmentations in unpaired.hookspecs):
    ``augment(images, generator)`` gives a finite float32 tensor of the images' shape; gradients
    reach the images; every random number comes from ``generator`` (torch's global generator is
    untouched, one generator state gives one output, a batch's draws do not depend on its values,
    so the engine's same draw holds); draws are per sample (copies of one image in a batch come out
    different, unless the augmentation leaves every image as it is, as ADA does at p = 0).
    Optional ``observe``, ``adapt`` and ``metrics`` run on a few steps of logits, metrics are
    scalar tensors, and an ``nn.Module``'s state round-trips through a checkpoint. Returns the
    augmentation."""
    import io

    factory, label = _resolve("augmentation", factory, params)
    aug = factory(**params)
    _expect(callable(aug), f"{label}: built a {type(aug).__name__}, not callable as augment(images, generator)")
    for c in channels:
        for h, w in sizes:
            where = f"{label} on ({BATCH * 2}, {c}, {h}, {w})"
            torch.manual_seed(0)
            x = _images(BATCH * 2, c, h, w).requires_grad_(True)
            other = _images(BATCH * 2, c, h, w)
            before = torch.get_rng_state()
            y = _augment(aug, x, 1, where)
            again = _augment(aug, x.detach(), 1, where)
            _expect(torch.equal(torch.get_rng_state(), before),
                    f"{where}: drew from torch's global generator; draw every random number from `generator`")
            shape = tuple(getattr(y, "shape", ())) or type(y).__name__
            _expect(isinstance(y, torch.Tensor) and tuple(y.shape) == tuple(x.shape),
                    f"{where}: returned {shape}, expected {tuple(x.shape)}")
            _expect(y.dtype == torch.float32, f"{where}: returned {y.dtype} for float32 images")
            _finite(y, where)
            _expect(torch.equal(y.detach(), again), f"{where}: one generator state gave two different outputs")
            y.float().square().mean().backward()
            _expect(x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0,
                    f"{where}: no finite gradient reaches the images (the augmentation must be differentiable)")
            # the draws depend on the batch's shape only: as many are drawn for other images
            states = []
            for images in (x.detach(), other):
                generator = torch.Generator().manual_seed(2)
                _augment(aug, images, generator, where)
                states.append(generator.get_state())
            _expect(torch.equal(*states), f"{where}: draws a number of random values that depends on the images' "
                    "values; the engine's same draw needs draws that depend on the batch's shape only")
            same = x.detach()[:1].expand_as(x).contiguous()
            out = _augment(aug, same, 3, where)
            _expect(torch.equal(out, same) or any(not torch.equal(out[0], out[i]) for i in range(1, len(out))),
                    f"{where}: every copy of one image came out the same: draw per sample")
    observe, adapt, metrics = (getattr(aug, k, None) for k in ("observe", "adapt", "metrics"))
    for step in range(1, 9):
        if callable(observe):
            observe(torch.randn(BATCH, 1, 6, 6) + 0.5)
        if callable(adapt):
            adapt(step, BATCH, lambda t: t)
    if callable(metrics):
        for k, v in dict(metrics()).items():
            _expect(isinstance(k, str) and isinstance(v, torch.Tensor) and v.dim() == 0,
                    f"{label}: metrics()[{k!r}] is {type(v).__name__} {tuple(getattr(v, 'shape', ()))}, "
                    "expected a scalar tensor")
            _finite(v, f"{label}: metrics()[{k!r}]")
    if isinstance(aug, nn.Module):
        buf = io.BytesIO()
        torch.save(aug.state_dict(), buf)
        buf.seek(0)
        fresh = factory(**params)
        fresh.load_state_dict(torch.load(buf, weights_only=True))
        _expect(_same_state(fresh.state_dict(), aug.state_dict()),
                f"{label}: state_dict() does not round-trip through load_state_dict()")
    return aug


def _augment(aug: Callable[[torch.Tensor, torch.Generator], Any], x: torch.Tensor, seed: int | torch.Generator,
             where: str) -> Any:
    generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    try:
        return aug(x, generator)
    except Exception as exc:
        raise AssertionError(f"{where}: raised {type(exc).__name__}: {exc}") from exc


# --- losses ------------------------------------------------------------------------------------
def _check_adversarial(loss: "AdversarialLoss", label: str) -> None:
    for shape in ((BATCH, 1, 6, 6), (BATCH, 1)):
        real = torch.randn(shape, requires_grad=True)
        fake = torch.randn(shape, requires_grad=True)
        g, d = loss.generator_loss(fake), loss.discriminator_loss(real, fake)
        for what, value in (("generator_loss", g), ("discriminator_loss", d)):
            _scalar(value, f"{label}.{what} on logits {shape}")
        (g_fake,) = torch.autograd.grad(g, fake)
        _expect(g_fake.abs().sum() > 0, f"{label}: generator_loss passes no gradient to the fake logits")
        d_real, d_fake = torch.autograd.grad(d, (real, fake))
        _expect(d_real.abs().sum() > 0 and d_fake.abs().sum() > 0,
                f"{label}: discriminator_loss passes no gradient to the real and the fake logits")
    high, low = torch.full((1, 1), 5.0), torch.full((1, 1), -5.0)
    _expect(loss.generator_loss(high) < loss.generator_loss(low),
            f"{label}.generator_loss must be lower when the discriminator calls the fakes real (high logits)")
    _expect(loss.discriminator_loss(high, low) < loss.discriminator_loss(low, high),
            f"{label}.discriminator_loss must be lower when real logits are high and fake logits low")
    penalty = getattr(loss, "penalty", None)
    if penalty is not None:
        _check_penalty(penalty, label)


def _check_penalty(penalty: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor], label: str) -> None:
    _expect(callable(penalty), f"{label}.penalty is not callable")
    torch.manual_seed(0)
    d = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3, padding=1))
    real, fake = _images(BATCH, 3, 16, 16), _images(BATCH, 3, 16, 16)
    value = penalty(d, real, fake)
    _scalar(value, f"{label}.penalty")
    _expect(value.item() >= 0, f"{label}.penalty is negative ({value.item():.3g})")
    value.backward()
    grads = [p.grad for p in d.parameters() if p.grad is not None]  # the last bias gets none: it can't change dD/dx
    _expect(all(torch.isfinite(gr).all() for gr in grads), f"{label}.penalty gives the discriminator NaN gradients")
    _expect(any(gr.abs().sum() > 0 for gr in grads), f"{label}.penalty passes no gradient to the discriminator")


def _check_reconstruction(loss: "ReconstructionLoss", label: str) -> None:
    _expect(callable(loss), f"{label}: built a {type(loss).__name__}: neither adversarial (generator_loss and "
                            "discriminator_loss) nor a reconstruction loss callable as loss(output, target)")
    torch.manual_seed(0)
    out = _images(BATCH, 3, 8, 8).requires_grad_(True)
    target = _images(BATCH, 3, 8, 8)
    value = loss(out, target)
    _scalar(value, f"{label}(output, target)")
    _expect(value.item() > 0, f"{label}: loss of different images is {value.item():.3g}, expected > 0")
    same = loss(target, target)
    _expect(float(same) == 0, f"{label}: loss of equal images is {float(same):.3g}, expected 0")
    value.backward()
    _expect(out.grad is not None and out.grad.abs().sum() > 0, f"{label}: no gradient reaches the output images")


SMALL_GENERATOR = ("resnet", {"ngf": 4, "n_blocks": 5})  # 5 blocks: CUT's block5 exists
SMALL_DISCRIMINATOR = ("patchgan", {"ndf": 4, "n_layers": 2})


def check_objective(factory: Callable[..., Any] | str, *,
                    generator: tuple[str, Mapping[str, Any]] = SMALL_GENERATOR,
                    discriminator: tuple[str, Mapping[str, Any]] = SMALL_DISCRIMINATOR,
                    losses: Mapping[str, Mapping[str, Any]] | None = None, channels: tuple[int, int] = (3, 3),
                    size: tuple[int, int] = (32, 32), batch: int = BATCH, **params: Any) -> dict[str, torch.Tensor]:
    """``factory(parts, **params)`` -> an objective that keeps the contract (register_objectives
    in unpaired.hookspecs), assembled and stepped as the engine does it (unpaired.engine.assemble,
    unpaired.engine.phases): its param groups partition the trainable parameters, its translators map
    A to B (and B to A) images, one step gives finite scalar terms, every phase is updated and
    each update moves that phase's parameters only, samples are image batches, and
    extra_state() round-trips through a checkpoint; a stochastic translator (one declaring
    ``noise_inputs``, unpaired.engine.noise) gives the same output for the same noise and another for
    other noise. An objective that needs conditioned networks (``generator_conditions``,
    ``discriminator_conditions``: unpaired.engine.conditions) gets the small networks with the params
    their factory names for it (``conditions_param``). When the objective has an adversarial
    role, one more step with a loss that has a penalty (``wgan``, unless the first had one)
    and an augmentation hooked on (unpaired.engine.augment) checks that every discriminator loss goes
    through ``judge``, which adds the penalty, and that every discriminator input, the
    penalty's included, went through the discriminator's call (``d(x)``, not ``d.forward(x)``),
    where the engine augments it. ``losses``: {role: {name, weight, params}} over the
    objective's defaults."""
    import io

    factory, label = _resolve("objective", factory, params)
    obj, assembly, terms = _objective_step(factory, label, params, generator, discriminator, losses, channels, size,
                                           batch, seed=0)
    a, b = _images(batch, channels[0], *size), _images(batch, channels[1], *size)
    with torch.no_grad():
        rows = obj.samples(a, b)
    _expect(isinstance(rows, dict) and rows, f"{label}: samples() returned {type(rows).__name__}, expected "
            "{row name: (images, ...)}")
    for k, row in rows.items():
        for t in row:
            _expect(isinstance(t, torch.Tensor) and t.dim() == 4 and t.shape[0] == batch,
                    f"{label}: samples()[{k!r}] holds {getattr(t, 'shape', type(t))}, expected (N, C, H, W) batches")
    buf = io.BytesIO()
    torch.save(obj.extra_state(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    again = _assemble(factory, label, params, generator, discriminator, losses, channels, seed=1).objective
    again.load_extra_state(state)
    buf2 = io.BytesIO()
    torch.save(again.extra_state(), buf2)
    _expect(buf2.getvalue() == buf.getvalue() or _same_state(again.extra_state(), state),
            f"{label}: extra_state() does not round-trip through load_extra_state()")
    from .engine.objective import ADVERSARIAL

    adversarial = [role for role, kind in (getattr(factory, "loss_kinds", None) or {}).items() if kind == ADVERSARIAL]
    if adversarial:
        with_penalty = losses
        if not any(adv.has_penalty for adv in assembly.adversarial):
            wgan = {"name": "wgan", "params": {"gp_weight": 10.0}}
            with_penalty = {**(losses or {}), **{role: wgan for role in adversarial}}
        _objective_step(factory, label, params, generator, discriminator, with_penalty, channels, size, batch, seed=2,
                        spy=_AugmentationSpy())
    return terms


class _AugmentationSpy:
    """An augmentation for check_objective: a copy of each batch, each copy kept, so that a
    discriminator's forward can tell whether its input came through the engine's hook."""

    def __init__(self) -> None:
        self.outputs: list = []
        self.bypassed = 0  # discriminator forwards in training mode on an input that skipped the hook

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        out = images.clone()
        self.outputs.append(out)
        return out

    def watch(self, net: nn.Module) -> None:
        forward = net.forward

        def watched(x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if net.training and not any(x is out for out in self.outputs):
                self.bypassed += 1
            return forward(x, *args, **kwargs)

        net.forward = watched


def _assemble(factory: Callable[..., Any], label: str, params: dict[str, Any],
              generator: tuple[str, Mapping[str, Any]], discriminator: tuple[str, Mapping[str, Any]],
              losses: Mapping[str, Mapping[str, Any]] | None, channels: tuple[int, int], seed: int) -> "Assembly":
    from omegaconf import OmegaConf

    from .engine.assemble import assemble
    from .recipe.config import LossChoice, Recipe
    from .errors import UnpairedError

    from .engine import conditions
    from .loading import get_registry

    cfg = OmegaConf.structured(Recipe)
    cfg.name = "check_objective"
    for key, (name, net_params) in (("generator", generator), ("discriminator", discriminator)):
        # an objective that needs conditioned networks gets them, where the factory says how
        needs = conditions.needed(factory, key)
        enable = conditions.enabling_params(get_registry().entry(key, name).factory, needs) if needs else {}
        cfg[key].name, cfg[key].params = name, {**enable, **dict(net_params)}
    for role, choice in (losses or {}).items():
        cfg.losses[role] = LossChoice(**choice)
    torch.manual_seed(seed)
    try:
        return assemble(cfg, channels=channels, factory=factory, label=label, params=params)
    except UnpairedError as exc:
        raise AssertionError(str(exc)) from None


def _objective_step(factory: Callable[..., Any], label: str, params: dict[str, Any],
                    generator: tuple[str, Mapping[str, Any]], discriminator: tuple[str, Mapping[str, Any]],
                    losses: Mapping[str, Mapping[str, Any]] | None, channels: tuple[int, int], size: tuple[int, int],
                    batch: int, seed: int, spy: "_AugmentationSpy | None" = None,
                    ) -> tuple[Any, "Assembly", dict[str, torch.Tensor]]:
    """(objective, assembly, terms) after one train_step as the engine runs it, checked; with
    ``spy`` (an _AugmentationSpy) hooked onto the discriminators as the engine's augmentation."""
    from .engine.augment import Augmentation, attach
    from .errors import UnpairedError
    from .engine.objective import translator_of
    from .engine.phases import PhaseOptimizers, Step

    assembly = _assemble(factory, label, params, generator, discriminator, losses, channels, seed)
    obj = assembly.objective
    ca, cb = channels
    a, b = _images(batch, ca, *size), _images(batch, cb, *size)
    for direction in obj.translators:
        x, cout = (a, cb) if direction == "a2b" else (b, ca)
        with torch.no_grad():
            y = translator_of(obj, direction)(x)
        _expect(isinstance(y, torch.Tensor) and tuple(y.shape) == (batch, cout, *size),
                f"{label}: translator {direction} gave {tuple(getattr(y, 'shape', ()))} for {tuple(x.shape)}")
        _check_stochastic(translator_of(obj, direction), x, f"{label}: translator {direction}")
    groups = obj.param_groups()
    optimizers = PhaseOptimizers(groups, lr=1e-3)
    d_phases = assembly.discriminator_phases(groups)
    augmentation = None
    if spy is not None:
        augmentation = attach(Augmentation(spy, "check_objective"), assembly.discriminators(augmented=True),
                              assembly.adversarial)
        for net in assembly.discriminators(augmented=True):
            spy.watch(net)

    def update(phase: str, loss: torch.Tensor) -> bool:
        _expect(phase in groups, f"{label}: update({phase!r}) names no phase of param_groups() ({', '.join(groups)})")
        _scalar(loss, f"{label}: the loss given to update({phase!r})")
        others = [p for ph, ps in groups.items() if ph != phase for p in ps]
        before = [p.detach().clone() for p in others]
        stepped = optimizers.update(phase, loss)
        _expect(any(p.grad is not None and p.grad.abs().sum() > 0 for p in groups[phase]),
                f"{label}: the loss of phase {phase!r} gives its parameters no gradient")
        _expect(all(torch.equal(p, q) for p, q in zip(others, before)),
                f"{label}: update({phase!r}) changed parameters of another phase")
        return stepped

    terms = obj.train_step(Step(obj.phases, config=assembly.parts.config, augmentation=augmentation), a, b, update)
    _expect(isinstance(terms, dict) and terms, f"{label}: train_step returned {type(terms).__name__}, "
            "expected a dict of loss terms")
    for k, v in terms.items():
        _scalar(v, f"{label}: loss term {k!r}")
    _expect(set(optimizers.updated) == set(groups), f"{label}: train_step updated phases {optimizers.updated}, not "
            f"every one of {', '.join(groups)}")
    try:
        assembly.penalties(optimizers.updated, d_phases)
    except UnpairedError as exc:
        raise AssertionError(str(exc)) from None
    if spy is not None:
        _expect(spy.bypassed == 0, f"{label}: {spy.bypassed} discriminator forward(s) in training mode got an input "
                "the engine's augmentation never saw: call a discriminator as d(x), not d.forward(x), and only "
                "networks made by parts.discriminator() (docs/plugins.md, 'Augmentations')")
        _expect(not assembly.discriminators(augmented=True) or spy.outputs,
                f"{label}: train_step never called a discriminator made by parts.discriminator()")
    return obj, assembly, terms


def _check_stochastic(module: nn.Module, x: torch.Tensor, where: str) -> None:
    """A translator that declares noise inputs (unpaired.engine.noise) takes them and draws nothing
    else: the same noise gives the same output, other noise another one."""
    from .errors import UnpairedError
    from .engine.noise import draw, is_stochastic

    try:
        if not is_stochastic(module):
            return
        noise, other = (draw(module, x, torch.Generator().manual_seed(s)) for s in (0, 1))
    except UnpairedError as exc:
        raise AssertionError(f"{where}: {exc}") from None
    with torch.no_grad():
        first, again, another = module(x, **noise), module(x, **noise), module(x, **other)
    _expect(torch.equal(first, again), f"{where}: two outputs for the same noise: it draws random numbers "
            "outside its noise_inputs (translate --seed could not reproduce it)")
    _expect(not torch.equal(first, another), f"{where}: the same output for other noise: its noise_inputs are unused")


def _same_state(x: object, y: object) -> bool:
    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and x.shape == y.shape and torch.equal(x, y)
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_same_state(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return isinstance(y, (list, tuple)) and len(x) == len(y) and all(map(_same_state, x, y))
    return x == y


# --- helpers -----------------------------------------------------------------------------------
def _resolve(kind: str, factory: Callable[..., Any] | str, params: dict[str, Any]) -> tuple[Callable[..., Any], str]:
    """(the factory, a label for messages); a name is looked up in the registry, and the params
    are checked against its signature as a recipe's are."""
    if isinstance(factory, str):
        from .loading import get_registry

        entry = get_registry().check_params(kind, factory, params)
        return entry.factory, f"{kind} {factory!r}"
    _expect(callable(factory), f"{kind} factory {factory!r} is not callable")
    return factory, f"{kind} {getattr(factory, '__name__', factory)!r}"


def _build(factory: Callable[..., Any], label: str, params: dict[str, Any], **engine_args: int) -> Any:
    obj = factory(**engine_args, **params)
    if engine_args:
        _expect(isinstance(obj, nn.Module), f"{label}: factory returned {type(obj).__name__}, not an nn.Module")
    return obj


def _forward(net: Callable[[torch.Tensor], Any], x: torch.Tensor, where: str) -> Any:
    try:
        return net(x)
    except Exception as exc:
        raise AssertionError(f"{where}: forward of {tuple(x.shape)} raised {type(exc).__name__}: {exc}") from exc


def _gradients_flow(net: nn.Module, x: torch.Tensor, objective: torch.Tensor, where: str) -> None:
    objective.backward()
    params = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    _expect(params, f"{where}: has no trainable parameters")
    missing = [n for n, p in params if p.grad is None]
    _expect(not missing, f"{where}: no gradient reaches {', '.join(missing[:5])}")
    bad = [n for n, p in params if not torch.isfinite(cast(torch.Tensor, p.grad)).all()]  # grads: none is None
    _expect(not bad, f"{where}: non-finite gradients in {', '.join(bad[:5])}")
    _expect(any(cast(torch.Tensor, p.grad).abs().sum() > 0 for _, p in params),
            f"{where}: every parameter gradient is zero")
    _expect(x.grad is not None and x.grad.abs().sum() > 0, f"{where}: no gradient reaches the input")


def _images(n: int, c: int, h: int, w: int) -> torch.Tensor:
    return torch.rand(n, c, h, w) * 2 - 1


def _scalar(value: Any, where: str) -> None:
    _expect(isinstance(value, torch.Tensor) and value.dim() == 0,
            f"{where}: returned {tuple(getattr(value, 'shape', ())) or type(value).__name__}, expected a scalar tensor")
    _finite(value, where)


def _finite(t: torch.Tensor, where: str) -> None:
    if not torch.isfinite(t).all():
        raise AssertionError(f"{where}: contains NaN or inf")


def _expect(condition: object, message: str) -> None:
    if not condition:
        raise AssertionError(message)

