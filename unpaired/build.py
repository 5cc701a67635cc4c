"""From a resolved recipe to objects: plugins loaded, the objective (its networks and losses), datasets.
Errors name the recipe key."""
import torch
from torch import nn

from .config import plain
from .errors import UnpairedError
from .loading import get_registry, load_plugin_file
from .objective import build_objective, resolve_losses


def load_recipe_plugins(cfg):
    for path in cfg.plugins:
        load_plugin_file(path)
    return get_registry()


def check_recipe(cfg, registry=None):
    """Every plugin name and param the recipe uses, checked before any data or network is
    touched; every problem found is reported at once (one UnpairedError, a line each)."""
    registry = registry or get_registry()
    problems = []

    def check(what, *args, **kwargs):
        try:
            return what(*args, **kwargs)
        except UnpairedError as exc:
            problems.append(str(exc))

    if check(registry.check_params, "objective", cfg.objective.name, plain(cfg.objective.params), key="objective"):
        check(resolve_losses, cfg, registry)
    for kind, key in (("generator", "generator"), ("discriminator", "discriminator")):
        check(registry.check_params, kind, cfg[key].name, plain(cfg[key].params), key=key)
    check(registry.check_params, "dataset", cfg.data.name, plain(cfg.data.params), key="data")
    for role, choice in cfg.losses.items():
        if choice.name is not None:
            check(registry.check_params, "loss", choice.name, plain(choice.params), key=f"losses.{role}")
    if cfg.eval.every > 0 or cfg.eval.at_end:
        check(registry.check_params, "feature_extractor", cfg.eval.extractor, plain(cfg.eval.extractor_params),
              key="eval.extractor")
    if problems:
        head = f"the recipe has {len(problems)} problems:\n  " if len(problems) > 1 else ""
        raise UnpairedError(head + "\n  ".join(problems))


def build_model(cfg, registry=None, channels=(3, 3), rank=0):
    """The recipe's objective with its networks (weights not yet initialised; losses resolved
    against the objective's defaults); ``channels``: the image channels of domains A and B."""
    registry = registry or get_registry()
    resolve_losses(cfg, registry)
    return build_objective(cfg, registry, channels, rank=rank)


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
    params = plain(cfg.data.params)
    if test:
        if cfg.data.test_params is None:
            return None
        params.update(plain(cfg.data.test_params))
    return registry.create("dataset", cfg.data.name, params, key="data")


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
        "objective": ("objective", cfg.objective.name),
        "generator": ("generator", cfg.generator.name),
        "discriminator": ("discriminator", cfg.discriminator.name),
        "dataset": ("dataset", cfg.data.name),
        **{f"loss.{r}": ("loss", c.name) for r, c in cfg.losses.items() if c.name is not None},
    }
    out = {}
    for role, (kind, name) in chosen.items():
        p = registry.entry(kind, name).plugin
        out[role] = {"kind": kind, "name": name, "plugin": p.name, "source": p.source,
                     "dist": p.dist, "version": p.version, "location": p.location}
    return out
