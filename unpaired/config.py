"""Recipes: flat YAML merged over a typed schema, then ``key=value`` overrides.

An override of a mapping replaces it (``generator.params={}`` clears the recipe's params), and
one that changes a plugin's name starts its params empty (``unpaired.recipe_rules``), so
``generator.name=unet`` swaps a plugin from the command line.
Unknown keys, wrong types and missing values are errors naming the key.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import UnpairedError
from .recipe_rules import clear_swapped_params, find_data_paths, swapped_plugins, under


@dataclass
class PluginChoice:
    name: str = MISSING
    params: Dict[str, Any] = field(default_factory=dict)


@dataclass
class LossChoice:
    # null: the objective's default for this role (unpaired plugins -v lists them)
    name: Optional[str] = None
    weight: Optional[float] = None
    params: Dict[str, Any] = field(default_factory=dict)


def _loss_roles():
    """The roles every recipe may set without writing them first (``losses.cycle.weight=3`` on
    the command line); each objective declares the roles it uses and their defaults."""
    return {role: LossChoice() for role in ("adversarial", "cycle", "identity")}


@dataclass
class Data:
    name: str = "image_folder"
    params: Dict[str, Any] = field(default_factory=dict)
    # params merged over `params` for the held-out images of sample grids, e.g. {split: test};
    # null: samples come from the training data
    test_params: Optional[Dict[str, Any]] = None
    batch_size: int = 1
    # loader worker processes; auto: 0 on a CPU whose cores the compute threads use, else up to 2;
    # 2-8 per GPU (unpaired.devices.loader_workers)
    num_workers: Union[int, str] = "auto"


@dataclass
class Train:
    epochs: int = 100  # at the full learning rate
    decay_epochs: int = 100  # then linear decay towards 0
    max_steps: Optional[int] = None  # stop early after this many steps in all
    lr: float = 2.0e-4
    betas: List[float] = field(default_factory=lambda: [0.5, 0.999])
    pool_size: int = 50
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    compile: bool = False  # torch.compile the four networks
    compile_backend: str = "inductor"  # torch.compile's backend (aot_eager: no code generation)
    channels_last: Optional[bool] = None  # null: on for CUDA, off on the CPU (slower there)
    # one batched call for a generator's translation and identity passes; null: on unless the
    # generator has batch norm (which mixes the two batches)
    fuse_passes: Optional[bool] = None
    seed: int = 0
    init: str = "normal"  # normal | xavier | kaiming | orthogonal | none (keep the plugin's)
    init_gain: float = 0.02
    log_every: int = 50
    sample_every: int = 500
    samples: int = 4  # images per direction in a sample grid
    checkpoint_every: int = 1000


@dataclass
class Eval:
    every: int = 0  # steps between evaluations during training; 0: only at the end if `at_end`
    at_end: bool = False
    extractor: str = "inception"  # a registered feature extractor; only inception matches published FIDs
    extractor_params: Dict[str, Any] = field(default_factory=dict)
    metric: str = "kid_a2b"  # what checkpoints/best.pt tracks
    max_images: int = 500  # test images per domain used (all when fewer)
    batch_size: int = 16


@dataclass
class Recipe:
    name: str = MISSING
    out_dir: Optional[str] = None  # default runs/<name>
    plugins: List[str] = field(default_factory=list)  # local plugin files (relative to the recipe)
    # the training algorithm: a registered objective (cyclegan, cut, fastcut, ...) and its params
    objective: PluginChoice = field(default_factory=lambda: PluginChoice("cyclegan"))
    generator: PluginChoice = field(default_factory=lambda: PluginChoice("resnet"))
    discriminator: PluginChoice = field(default_factory=lambda: PluginChoice("patchgan"))
    losses: Dict[str, LossChoice] = field(default_factory=_loss_roles)  # role -> choice
    data: Data = field(default_factory=Data)
    train: Train = field(default_factory=Train)
    eval: Eval = field(default_factory=Eval)
    # plugin names (or their last dotted part) whose training events are switched off, e.g. [progress]
    disable_plugins: List[str] = field(default_factory=list)
    # overrides applied by `unpaired run RECIPE --quick` (a CPU preview of the same recipe):
    # dotted keys to values, e.g. {train.max_steps: 400, generator.params: {ngf: 32}}
    quick: Dict[str, Any] = field(default_factory=dict)


OPEN_MAPPINGS = ("params", "test_params", "extractor_params")  # free-form: plugins' keyword arguments

CHOICES = {
    "train.precision": ("auto", "fp32", "bf16", "fp16"),
    "train.init": ("normal", "xavier", "kaiming", "orthogonal", "none"),
}


def _fail(exc, source):
    key = getattr(exc, "full_key", None) or ""
    msg = (getattr(exc, "msg", None) or str(exc)).strip().splitlines()[0]
    where = f"{source}: " if source else ""
    if key:
        where += f"key {key}: "
    return UnpairedError(f"{where}{msg}")


def load_recipe(path, overrides=(), quick=False):
    """The resolved recipe: schema <- YAML file <- (the recipe's `quick` list) <- overrides."""
    path = Path(path)
    if not path.is_file():
        raise UnpairedError(f"recipe {path} does not exist (recipes ship in recipes/, e.g. recipes/forest_abstract.yaml)")
    try:
        raw = OmegaConf.load(path)
    except Exception as exc:
        raise UnpairedError(f"recipe {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, DictConfig):
        raise UnpairedError(f"recipe {path} must be a mapping of keys, not a {type(raw).__name__}")
    cfg = OmegaConf.structured(Recipe)
    try:
        cfg = OmegaConf.merge(cfg, raw)
    except OmegaConfBaseException as exc:
        raise _fail(exc, f"recipe {path}") from None
    swaps = swapped_plugins(cfg, overrides)  # a new plugin name starts its params empty
    dropped = []
    if quick:
        if not cfg.quick:
            raise UnpairedError(f"recipe {path} defines no `quick` overrides for --quick")
        source = f"recipe {path} key quick"
        for key, value in OmegaConf.to_container(cfg.quick).items():
            if any(under(key, choice) for choice in swaps):
                dropped.append(key)
                continue
            set_key(cfg, key, value, source)
    clear_swapped_params(cfg, swaps, dropped)
    apply_overrides(cfg, overrides)
    find_data_paths(cfg, path)
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise UnpairedError(f"recipe {path}: missing value for {', '.join(missing)}")
    cfg.plugins = [str((path.parent / p).resolve()) if not Path(p).is_absolute() else p for p in cfg.plugins]
    if cfg.out_dir is None:
        cfg.out_dir = str(Path("runs") / (cfg.name + ("_quick" if quick else "")))
    validate(cfg, f"recipe {path}")
    return cfg


def apply_overrides(cfg, overrides, source="command line"):
    """Apply ``key=value`` strings; a mapping value replaces the mapping there."""
    for item in overrides:
        if "=" not in item:
            raise UnpairedError(f"{source}: override {item!r} is not key=value (e.g. train.max_steps=100)")
        key = item.split("=", 1)[0].strip()
        try:
            value = OmegaConf.select(OmegaConf.from_dotlist([item]), key)
        except OmegaConfBaseException as exc:
            raise _fail(exc, f"{source} ({item})") from None
        set_key(cfg, key, value, f"{source} ({item})")
    return cfg


def set_key(cfg, key, value, source):
    """cfg[key] = value, replacing a mapping rather than merging into it."""
    parts = key.split(".")
    if len(parts) > 2 and parts[0] == "losses" and parts[1] not in cfg.losses:
        cfg.losses[parts[1]] = LossChoice()  # a loss role an objective may use (losses.nce.weight=2)
    if OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT and not _in_open_mapping(cfg, key):
        raise UnpairedError(f"{source}: unknown key {key!r}{_close_keys(cfg, key)}")
    try:
        OmegaConf.update(cfg, key, value, merge=False)
    except OmegaConfBaseException as exc:
        raise _fail(exc, source) from None


_ABSENT = object()


def _in_open_mapping(cfg, key):
    """True for keys under a free-form mapping (params), where new keys are allowed."""
    parent, _, _ = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent else None
    return isinstance(node, DictConfig) and parent.split(".")[-1] in OPEN_MAPPINGS


def _close_keys(cfg, key):
    import difflib

    keys = _all_keys(OmegaConf.to_container(cfg))
    close = difflib.get_close_matches(key, keys, n=2)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _all_keys(d, prefix=""):
    out = []
    for k, v in d.items():
        out.append(prefix + k)
        if isinstance(v, dict) and k not in OPEN_MAPPINGS and prefix + k != "quick":  # quick's keys are not settable
            out += _all_keys(v, prefix + k + ".")
    return out


def validate(cfg, source):
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise UnpairedError(f"{source}: missing value for {', '.join(missing)}")
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in allowed:
            raise UnpairedError(f"{source}: key {key}: {value!r} is not one of {', '.join(allowed)}")
    t = cfg.train
    checks = [
        (t.epochs + t.decay_epochs > 0, "train.epochs + train.decay_epochs must be positive"),
        (t.epochs >= 0 and t.decay_epochs >= 0, "train.epochs and train.decay_epochs must be >= 0"),
        (t.max_steps is None or t.max_steps > 0, "train.max_steps must be positive (or null)"),
        (t.lr > 0, "train.lr must be positive"),
        (len(t.betas) == 2, "train.betas must be two numbers"),
        (t.pool_size >= 0, "train.pool_size must be >= 0"),
        (min(t.log_every, t.sample_every, t.checkpoint_every) > 0, "train.log_every, sample_every and checkpoint_every must be positive"),
        (cfg.data.batch_size > 0, "data.batch_size must be positive"),
        (cfg.data.num_workers == "auto" or (isinstance(cfg.data.num_workers, int) and cfg.data.num_workers >= 0),
         f"data.num_workers must be auto or a number >= 0, not {cfg.data.num_workers!r}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise UnpairedError(f"{source}: {msg}")


def plain(node):
    """A recipe node (e.g. a plugin's params) as a plain dict, interpolations resolved; {} for None."""
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def to_yaml(cfg):
    return OmegaConf.to_yaml(cfg)


def from_container(container):
    """A recipe from a plain dict (a checkpoint's config), validated against the schema."""
    try:
        return OmegaConf.merge(OmegaConf.structured(Recipe), container)
    except OmegaConfBaseException as exc:
        raise _fail(exc, "checkpoint config") from None
