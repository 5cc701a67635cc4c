"""From a resolved recipe to objects: plugins loaded, networks, losses, datasets.
Errors name the recipe key."""
import torch
from torch import nn

from . import probe
from .errors import UnpairedError
from .loading import get_registry, load_plugin_file
from .objective import CycleGAN


def load_recipe_plugins(cfg):
    for path in cfg.plugins:
        load_plugin_file(path)
    return get_registry()


def _params(node):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def is_adversarial(loss):
    return callable(getattr(loss, "generator_loss", None)) and callable(getattr(loss, "discriminator_loss", None))


def build_loss(cfg, role, registry):
    choice = cfg.losses[role]
    key = f"losses.{role}"
    loss = registry.build("loss", choice.name, _params(choice.params), key=key)
    if role == "adversarial" and not is_adversarial(loss):
        raise UnpairedError(f"{key}.name: loss {choice.name!r} is a reconstruction loss; the adversarial slot "
                            "needs one with generator_loss() and discriminator_loss() (e.g. bce, lsgan)")
    if role != "adversarial" and is_adversarial(loss):
        raise UnpairedError(f"{key}.name: loss {choice.name!r} is an adversarial loss; the {role} slot needs a "
                            "reconstruction loss called as loss(output, target) (e.g. l1)")
    if role != "adversarial" and not callable(loss):
        raise UnpairedError(f"{key}.name: loss {choice.name!r} is not callable as loss(output, target)")
    return loss


def build_model(cfg, registry=None, channels=(3, 3)):
    """The four networks and the losses as a CycleGAN module (weights not yet initialised);
    ``channels``: the image channels of domains A and B (the data's; a checkpoint stores them)."""
    registry = registry or get_registry()
    ca, cb = channels
    g, d = cfg.generator, cfg.discriminator
    gp, dp = _params(g.params), _params(d.params)
    probe.check_size(lambda: registry.build("generator", g.name, gp, key="generator", in_channels=ca, out_channels=cb),
                     "generator", g.name)  # before any memory is allocated
    probe.check_size(lambda: registry.build("discriminator", d.name, dp, key="discriminator", in_channels=ca),
                     "discriminator", d.name)
    nets = dict(
        g_ab=registry.build("generator", g.name, gp, key="generator", in_channels=ca, out_channels=cb),
        g_ba=registry.build("generator", g.name, gp, key="generator", in_channels=cb, out_channels=ca),
        d_a=registry.build("discriminator", d.name, dp, key="discriminator", in_channels=ca),
        d_b=registry.build("discriminator", d.name, dp, key="discriminator", in_channels=cb),
    )
    for role, net in nets.items():
        if not isinstance(net, nn.Module):
            kind = "generator" if role.startswith("g") else "discriminator"
            raise UnpairedError(f"{kind}.name: {cfg[kind].name!r} built a {type(net).__name__}, not a torch nn.Module")
    losses = {role: build_loss(cfg, role, registry) for role in ("adversarial", "cycle", "identity")}
    return CycleGAN(
        **nets, **losses,
        w_adv=cfg.losses.adversarial.weight, w_cycle=cfg.losses.cycle.weight,
        w_identity=cfg.losses.identity.weight, use_identity=ca == cb,
    )


def data_channels(dataset, key="data"):
    """(channels of A, channels of B) from the first item, checked against the contract."""
    from .data import SeededItems

    try:
        item = SeededItems(dataset)[(0, 0)]
    except UnpairedError:
        raise
    except Exception as exc:
        raise UnpairedError(f"{key}.name: the dataset's first item failed to load: {type(exc).__name__}: {exc}") from None
    if not isinstance(item, dict) or "A" not in item or "B" not in item:
        raise UnpairedError(f"{key}.name: dataset items must be dicts with tensors 'A' and 'B'")
    out = []
    for d in ("A", "B"):
        t = item[d]
        if not hasattr(t, "dim") or t.dim() != 3:
            raise UnpairedError(f"{key}.name: item[{d!r}] must be a tensor (C, H, W), got {getattr(t, 'shape', type(t))}")
        if t.shape[1] % 4 or t.shape[2] % 4:
            raise UnpairedError(f"{key}: images are {t.shape[1]}x{t.shape[2]}; generators need sizes that are "
                                "multiples of 4 (set the crop size accordingly)")
        out.append(int(t.shape[0]))
    return tuple(out)


def build_dataset(cfg, registry=None, test=False):
    """The training dataset, or the held-out one (data.params <- data.test_params)."""
    registry = registry or get_registry()
    params = _params(cfg.data.params)
    if test:
        if cfg.data.test_params is None:
            return None
        params.update(_params(cfg.data.test_params))
    return registry.build("dataset", cfg.data.name, params, key="data")


def init_weights(net, kind="normal", gain=0.02):
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
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif "BatchNorm2d" in name and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def _raw_weight(m):
    """A layer's weight tensor, or the one under a parametrization (spectral norm)."""
    parametrizations = getattr(m, "parametrizations", None)
    if parametrizations is not None and "weight" in parametrizations:
        return parametrizations.weight.original
    return getattr(m, "weight", None) if isinstance(getattr(m, "weight", None), torch.Tensor) else None


def provenance(cfg, registry=None):
    """Which plugin (distribution, version) supplied each name the recipe uses."""
    registry = registry or get_registry()
    chosen = {
        "generator": ("generator", cfg.generator.name),
        "discriminator": ("discriminator", cfg.discriminator.name),
        "dataset": ("dataset", cfg.data.name),
        **{f"loss.{r}": ("loss", cfg.losses[r].name) for r in ("adversarial", "cycle", "identity")},
    }
    out = {}
    for role, (kind, name) in chosen.items():
        p = registry.entry(kind, name).plugin
        out[role] = {"kind": kind, "name": name, "plugin": p.name, "source": p.source,
                     "dist": p.dist, "version": p.version, "location": p.location}
    return out
