"""Recipes: flat YAML merged over a typed schema, then ``key=value`` overrides.

An override of a mapping replaces it (``generator.params={}`` clears the recipe's params), and
one that changes a plugin's name starts its params empty (``unpaired.recipe.rules``), so
``generator.name=unet`` swaps a plugin from the command line.
Unknown keys, wrong types and missing values are errors naming the key.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union, cast

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..console import printable
from ..errors import UnpairedError, one_of
from .rules import (clear_swapped_params, find_data_paths, move_keys, moved_override, renamed_metric, swapped_plugins,
                    under)


DEFAULT_OBJECTIVE = "cyclegan"  # the recipe key `objective` when a recipe names none: the article's CycleGAN


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


@dataclass
class AugmentChoice:
    # a registered augmentation (diffaugment, ada, ...) of everything the discriminators see; null: none
    name: Optional[str] = None
    params: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ConstraintChoice:
    # a registered constraint (semantic, mask_keep, edges, ...): a term added to the generator's loss
    name: str = MISSING
    weight: float = 1.0
    params: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Data:
    name: str = "image_folder"
    params: Dict[str, Any] = field(default_factory=dict)
    # params merged over `params` for the held-out images of sample grids, e.g. {split: test};
    # null: samples come from the training data
    test_params: Optional[Dict[str, Any]] = None
    batch_size: int = 1
    # loader worker processes; auto: 0 on a CPU whose cores the compute threads use, else up to 2;
    # 2-8 per GPU (unpaired.runtime.devices.loader_workers)
    num_workers: Union[int, str] = "auto"


@dataclass
class Train:
    epochs: int = 100  # at the full learning rate
    decay_epochs: int = 100  # then linear decay towards 0
    max_steps: Optional[int] = None  # stop early after this many steps in all
    lr: float = 2.0e-4
    betas: List[float] = field(default_factory=lambda: [0.5, 0.999])
    # per-phase learning rates and Adam betas, keyed by the objective's phases (g, d, e, ...), e.g.
    # {d: 1.0e-4} (TTUR); a phase not named uses lr / betas. Every phase follows lr's schedule
    phase_lr: Dict[str, float] = field(default_factory=dict)
    phase_betas: Dict[str, List[float]] = field(default_factory=dict)
    # micro-batches per optimizer step: data.batch_size x accumulate images per step, in
    # accumulate passes (the memory of one data.batch_size); steps, schedules and logs count steps
    accumulate: int = 1
    # the averaged generator: decay of an exponential moving average of the translating networks
    # (unpaired.engine.average); samples, reports and every command use it (--raw: the trained
    # weights). null: off
    ema: Optional[float] = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    compile: bool = False  # torch.compile the objective's networks
    compile_backend: str = "inductor"  # torch.compile's backend (aot_eager: no code generation)
    channels_last: Optional[bool] = None  # null: on for CUDA, off on the CPU (slower there)
    seed: int = 0
    init: str = "normal"  # normal | xavier | kaiming | orthogonal | none (keep the plugin's)
    init_gain: float = 0.02
    log_every: int = 50
    sample_every: int = 500
    samples: int = 4  # images per direction in a sample grid
    checkpoint_every: int = 1000
    # also keep checkpoints/step_<N>.pt (the generators of step N) every N steps; 0: off. Off by
    # default: kept steps are never removed, each is 91 MB for the article's CycleGAN, and a full
    # horse2zebra run has 266,800 steps; most recipes' quick blocks keep 4 (every 250 of 1,000 steps)
    keep_every: int = 0
    # image files or folders of your own (domain A) that the report's timeline translates A -> B at
    # every kept step, beside the held-out images (at most WATCH_MAX of them)
    watch: List[str] = field(default_factory=list)


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
    objective: PluginChoice = field(default_factory=lambda: PluginChoice(DEFAULT_OBJECTIVE))
    generator: PluginChoice = field(default_factory=lambda: PluginChoice("resnet"))
    discriminator: PluginChoice = field(default_factory=lambda: PluginChoice("patchgan"))
    # role -> choice, laid over the objective's defaults (`unpaired plugins -v` lists each objective's roles)
    losses: Dict[str, LossChoice] = field(default_factory=dict)
    # differentiable augmentation of every discriminator input (unpaired.engine.augment); `augment: null` = off
    augment: AugmentChoice = field(default_factory=AugmentChoice)
    # what translations must keep, for every objective (unpaired.engine.constraints): [] = none
    constraints: List[ConstraintChoice] = field(default_factory=list)
    data: Data = field(default_factory=Data)
    train: Train = field(default_factory=Train)
    eval: Eval = field(default_factory=Eval)
    # plugin names (or their last dotted part) whose training events are switched off, e.g. [progress]
    disable_plugins: List[str] = field(default_factory=list)
    # overrides applied by `unpaired run RECIPE --quick` (a CPU preview of the same recipe):
    # dotted keys to values, e.g. {train.max_steps: 400, generator.params: {ngf: 32}}
    quick: Dict[str, Any] = field(default_factory=dict)


OPEN_MAPPINGS = ("params", "test_params", "extractor_params")  # free-form: plugins' keyword arguments
NULLABLE_CHOICES = {"augment": AugmentChoice}  # `augment: null` (a recipe, an override, a checkpoint): {name: null}


def _null_choices(raw: dict) -> dict:
    """``raw`` (a plain recipe dict) with each of NULLABLE_CHOICES that is null as ``{name: null}``."""
    for key in NULLABLE_CHOICES:
        if key in raw and raw[key] is None:
            raw[key] = {"name": None, "params": {}}
    return raw


PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # train.precision; translate and eval take all but fp16
CHOICES = {
    "train.precision": PRECISIONS,
    "train.init": ("normal", "xavier", "kaiming", "orthogonal", "none"),
}


def _recipe_error(exc: Exception, source: str) -> UnpairedError:
    key = getattr(exc, "full_key", None) or ""
    msg = (getattr(exc, "msg", None) or str(exc)).strip().splitlines()[0]
    where = f"{source}: " if source else ""
    if key:
        where += f"key {key}: "
    return UnpairedError(f"{where}{msg}")


def load_recipe(path: str | Path, overrides: Sequence[str] = (), quick: bool = False) -> DictConfig:
    """The resolved recipe: schema <- YAML file <- (the recipe's `quick` list) <- overrides."""
    path = Path(path)
    if not path.is_file():
        raise UnpairedError(f"recipe {path} does not exist (recipes ship in recipes/, "
                            "e.g. recipes/forest_abstract.yaml)")
    try:
        raw = OmegaConf.load(path)
    except Exception as exc:
        where = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())  # one line
        raise UnpairedError(f"recipe {path} is not valid YAML: {where}") from None
    if not isinstance(raw, DictConfig):
        raise UnpairedError(f"recipe {path} must be a mapping of keys, not a {type(raw).__name__}")
    cfg = OmegaConf.structured(Recipe)
    try:
        moved = move_keys(_null_choices(_mapping(raw)), f"recipe {path}", DEFAULT_OBJECTIVE)
        cfg = cast(DictConfig, OmegaConf.merge(cfg, moved))
    except OmegaConfBaseException as exc:
        raise _recipe_error(exc, f"recipe {path}") from None
    swaps = swapped_plugins(cfg, overrides)  # a new plugin name starts its params empty
    dropped = []
    if quick:
        if not cfg.quick:
            raise UnpairedError(f"recipe {path} defines no `quick` overrides for --quick")
        source = f"recipe {path} key quick"
        for key, value in _mapping(cfg.quick).items():
            if any(under(key, choice) for choice in swaps):
                dropped.append(key)
                continue
            set_key(cfg, key, value, source)
    clear_swapped_params(cfg, swaps, dropped, overrides)
    apply_overrides(cfg, overrides)
    try:  # interpolation loops and missing references, named by key
        find_data_paths(cfg, path)
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            raise UnpairedError(f"recipe {path}: missing value for {', '.join(missing)}")
        cfg.plugins = [str((path.parent / p).resolve()) if not Path(p).is_absolute() else p for p in cfg.plugins]
        if cfg.out_dir is None:
            _name_without_environment(cfg, path)
            cfg.out_dir = str(Path("runs") / (cfg.name + ("_quick" if quick else "")))
        validate(cfg, f"recipe {path}")
    except OmegaConfBaseException as exc:
        raise _recipe_error(exc, f"recipe {path}") from None
    return cfg


def _name_without_environment(cfg: DictConfig, path: Path) -> None:
    """The default out_dir (runs/<name>) must not put a value from the environment into a
    folder name on disk (and so into config.yaml and checkpoints): refuse such a name."""
    as_stored = for_checkpoint(cfg)["name"]  # environment values kept as written
    if as_stored != cfg.name:
        written = _mapping(cfg)["name"]
        raise UnpairedError(f"recipe {path}: key name: {written!r} takes a value from the environment, and the "
                            "default out_dir (runs/<name>) would write that value into a folder name, config.yaml and "
                            "checkpoints. Set out_dir= explicitly (e.g. out_dir=runs/my_run)")


def apply_overrides(cfg: DictConfig, overrides: Sequence[str], source: str = "command line") -> DictConfig:
    """Apply ``key=value`` strings; a mapping value replaces the mapping there."""
    for item in overrides:
        if "=" not in item:
            raise UnpairedError(f"{source}: override {item!r} is not key=value (e.g. train.max_steps=100)")
        key = item.split("=", 1)[0].strip()
        set_key(cfg, key, override_value(item, source), f"{source} ({printable(item, newlines=False)})")
    return cfg


def override_value(item: str, source: str = "command line") -> Any:
    """The value of one ``key=value`` override, read as YAML (``train.lr=1e-4`` is a number,
    ``generator.params={ngf: 32}`` a mapping); a value that is not valid YAML (``name=@foo``,
    ``name='a``) is taken as the text typed, and the schema then checks its type. Refused, naming
    the value: control characters and YAML tags (``!!python/...``: nothing typed runs code)."""
    key, _, text = item.partition("=")
    key = key.strip()
    shown = printable(item, newlines=False)
    if _CONTROL_IN_VALUE.search(text):
        raise UnpairedError(f"{source}: override '{shown}' holds a control character; type the value without it")
    if not text.strip():
        raise UnpairedError(f"{source}: override '{shown}' has no value: give one, or {key}=null for none"
                            + (" (augment=null turns augmentation off)" if key.startswith("augment") else ""))
    if text.lstrip().startswith("!"):
        raise UnpairedError(f"{source}: override '{shown}': YAML tags (!...) are not accepted in values (nothing "
                            "typed runs code); if it is text, put it in YAML quotes inside the shell's, "
                            f"e.g. {key}=\"'...'\"")
    import yaml

    try:  # unresolved: an interpolation (${oc.env:X}) stays one, resolved when used
        value: Any = _mapping(OmegaConf.from_dotlist([f"{key}={text}"]))
        for part in key.split("."):
            value = value[part]
    except yaml.YAMLError:
        return text
    except OmegaConfBaseException as exc:
        raise _recipe_error(exc, f"{source} ({shown})") from None
    return value


_CONTROL_IN_VALUE = re.compile("[\x00-\x1f\x7f-\x9f]")


def set_key(cfg: DictConfig, key: str, value: Any, source: str) -> None:
    """cfg[key] = value, replacing a mapping rather than merging into it."""
    key = moved_override(key, cfg.objective.name)  # e.g. train.pool_size -> objective.params.pool_size
    if key is None:
        return
    if key in NULLABLE_CHOICES and value is None:
        value = OmegaConf.structured(NULLABLE_CHOICES[key])
    if key == "constraints" and isinstance(value, list):  # a list of choices: each checked against the schema
        try:
            value = [OmegaConf.merge(OmegaConf.structured(ConstraintChoice), v) for v in value]
        except OmegaConfBaseException as exc:
            raise _recipe_error(exc, source) from None
    parts = key.split(".")
    if len(parts) >= 2 and parts[0] == "losses" and parts[1] not in cfg.losses:
        cfg.losses[parts[1]] = LossChoice()  # a loss role an objective may use (losses.nce.weight=2)
    if OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT and not _in_open_mapping(cfg, key):
        raise UnpairedError(f"{source}: unknown key {key!r}{_close_keys(cfg, key)}")
    try:
        OmegaConf.update(cfg, key, value, merge=False)
    except OmegaConfBaseException as exc:
        raise _recipe_error(exc, source) from None


_ABSENT = object()


def _in_open_mapping(cfg: DictConfig, key: str) -> bool:
    """True for keys under a free-form mapping (params), where new keys are allowed."""
    parent, _, _ = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent else None
    return isinstance(node, DictConfig) and parent.split(".")[-1] in OPEN_MAPPINGS


def _close_keys(cfg: DictConfig, key: str) -> str:
    import difflib

    keys = _all_keys(_mapping(cfg))
    close = difflib.get_close_matches(key, keys, n=2)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _all_keys(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        out.append(prefix + k)
        if isinstance(v, dict) and k not in OPEN_MAPPINGS and prefix + k != "quick":  # quick's keys are not settable
            out += _all_keys(v, prefix + k + ".")
    return out


def validate(cfg: DictConfig, source: str) -> None:
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise UnpairedError(f"{source}: missing value for {', '.join(missing)}")
    try:  # interpolation loops and missing references, named by key
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise _recipe_error(exc, source) from None
    renamed_metric(cfg, source)
    for key, allowed in CHOICES.items():
        one_of(f"{source}: key {key}", OmegaConf.select(cfg, key), allowed)
    t = cfg.train
    checks = [
        (t.epochs + t.decay_epochs > 0, "train.epochs + train.decay_epochs must be positive"),
        (t.epochs >= 0 and t.decay_epochs >= 0, "train.epochs and train.decay_epochs must be >= 0"),
        (t.max_steps is None or t.max_steps > 0, "train.max_steps must be positive (or null)"),
        (_finite(t.lr) and t.lr > 0, f"train.lr: {t.lr} must be a finite number > 0"),
        (len(t.betas) == 2 and all(_finite(b) and 0 <= b < 1 for b in t.betas),
         f"train.betas: {list(t.betas)} must be two numbers in [0, 1)"),
        (min(t.log_every, t.sample_every, t.checkpoint_every) > 0,
         "train.log_every, sample_every and checkpoint_every must be positive"),
        (t.keep_every >= 0, f"train.keep_every: {t.keep_every} must be >= 0 (0: keep no step checkpoints)"),
        (t.samples > 0, f"train.samples: {t.samples} must be >= 1 (images per direction in a sample grid)"),
        (0 <= t.seed < 2**32, f"train.seed: {t.seed} must be an integer in [0, 2**32)"),
        (_finite(t.init_gain) and t.init_gain > 0, f"train.init_gain: {t.init_gain} must be a finite number > 0"),
        (cfg.data.batch_size > 0, "data.batch_size must be positive"),
        (t.accumulate >= 1, f"train.accumulate: {t.accumulate} must be >= 1 (micro-batches per step)"),
        (t.ema is None or (_finite(t.ema) and 0 <= t.ema < 1),
         f"train.ema: {t.ema} must be a decay in [0, 1), e.g. 0.999, or null (off)"),
        (cfg.data.num_workers == "auto" or (isinstance(cfg.data.num_workers, int) and cfg.data.num_workers >= 0),
         f"data.num_workers must be auto or a number >= 0, not {cfg.data.num_workers!r}"),
        (cfg.augment.name is None or str(cfg.augment.name).strip() != "",
         "augment.name is empty: name an augmentation (e.g. diffaugment) or turn it off with augment: null"),
        (cfg.eval.every >= 0, f"eval.every: {cfg.eval.every} must be >= 0"),
        (cfg.eval.max_images > 0, f"eval.max_images: {cfg.eval.max_images} must be >= 1"),
        (cfg.eval.batch_size > 0, f"eval.batch_size: {cfg.eval.batch_size} must be >= 1"),
    ]
    if t.compile:  # a misspelt backend: named now, not as a traceback at the first step
        import torch._dynamo

        backends = [b for b in torch._dynamo.list_backends(exclude_tags=()) if "TESTING" not in b]
        one_of(f"{source}: key train.compile_backend", t.compile_backend, backends)
    for i, choice in enumerate(cfg.constraints):
        checks.append((_finite(choice.weight) and choice.weight >= 0,
                       f"constraints.{i}.weight: {choice.weight} must be a finite number >= 0"))
    for role, choice in cfg.losses.items():
        w = choice.weight  # None: the objective's default
        checks.append((w is None or (_finite(w) and w >= 0), f"losses.{role}.weight: {w} must be a finite number >= 0"))
    for phase, lr in t.phase_lr.items():
        checks.append((_finite(lr) and lr > 0, f"train.phase_lr.{phase}: {lr} must be a finite number > 0"))
    for phase, betas in t.phase_betas.items():
        checks.append((len(betas) == 2 and all(_finite(b) and 0 <= b < 1 for b in betas),
                       f"train.phase_betas.{phase}: {list(betas)} must be two numbers in [0, 1)"))
    for ok, msg in checks:
        if not ok:
            raise UnpairedError(f"{source}: {msg}")


def _mapping(node: Any) -> dict:
    """A recipe node as a plain dict, interpolations kept as written."""
    return cast(dict, OmegaConf.to_container(node, resolve=False))


def plain(node: Any) -> Any:
    """A recipe node (e.g. a plugin's params) as a plain dict, interpolations resolved; {} for None."""
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg)


def for_checkpoint(cfg: DictConfig) -> dict:
    """The recipe as a plain dict to store in a checkpoint (which people share): interpolations
    resolved, except environment variables (``${oc.env:...}``): those are kept as written,
    escaped, so a checkpoint never carries a secret from the environment and loading one never
    reads the loader's environment."""
    raw = OmegaConf.to_container(cfg, resolve=False)
    safe = OmegaConf.create(_map_strings(raw, lambda v: v.replace("${", "\\${") if "oc.env" in v else v))
    try:
        resolved = OmegaConf.to_container(safe, resolve=True)
    except OmegaConfBaseException as exc:
        raise _recipe_error(exc, "recipe") from None
    return _map_strings(resolved, lambda v: v.replace("${", "\\${") if "oc.env" in v else v)


def as_typed(cfg: DictConfig, key: str) -> Any:
    """The value at ``key`` as the terminal may show it: interpolations resolved except the
    environment's (``fa_${oc.env:TOKEN}`` stays as typed), so a printed line never carries a
    secret from the environment."""
    value: Any = for_checkpoint(cfg)
    for part in key.split("."):
        value = value[part]
    return value.replace("\\${", "${") if isinstance(value, str) else value


def _map_strings(node: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(node, dict):
        return {k: _map_strings(v, fn) for k, v in node.items()}
    if isinstance(node, list):
        return [_map_strings(v, fn) for v in node]
    return fn(node) if isinstance(node, str) else node


def from_container(container: dict, source: str = "checkpoint config") -> DictConfig:
    """A recipe from a plain dict (a checkpoint's config), validated against the schema; keys
    that moved since it was written are moved (unpaired.recipe.rules)."""
    import copy

    try:
        container = move_keys(_null_choices(copy.deepcopy(container)), source, DEFAULT_OBJECTIVE)
        return cast(DictConfig, OmegaConf.merge(OmegaConf.structured(Recipe), container))
    except OmegaConfBaseException as exc:
        raise _recipe_error(exc, "checkpoint config") from None
