"""Rules that make a recipe predictable from anywhere (used by ``load_recipe``).

* **Moved keys.** Keys that belonged to one objective left the engine's schema in 0.2:
  ``train.pool_size`` and ``train.fuse_passes`` are CycleGAN's ``objective.params.pool_size``
  and ``objective.params.fuse_passes``. A recipe, an override or a checkpoint that still sets
  them is moved, with one line saying so, when the recipe's objective takes that param; for one
  that does not (CUT) the old engine ignored them, and so does this (one line).

* **Plugin swaps.** ``params`` belong to the plugin named beside them: a command-line override
  that changes ``X.name`` (``generator.name=unet``) starts ``X.params`` empty, dropping the
  recipe's and the ``quick`` block's params for the previous plugin (one line says so); params
  given on the command line (``generator.params.width=16``) then apply.
* **Relative data paths.** A relative path in ``data.params`` / ``data.test_params`` is taken
  from the current folder; when nothing is there but there is something beside the recipe or
  in the folder above it (the project of ``recipes/x.yaml``), that is used, with one line
  saying so. ``plugins:`` are relative to the recipe; ``runs/`` lands in the current folder.
"""
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import cast

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("unpaired")


# old key -> the objective param it became (0.2)
MOVED_TO_OBJECTIVE = {"train.pool_size": "pool_size", "train.fuse_passes": "fuse_passes"}


# evaluation metrics renamed (0.3): old name -> new name. The evaluation's cycle error shared its
# name with CycleGAN's training terms (weighted) in metrics.csv and the report
RENAMED_METRICS = {"cycle_a": "cycle_l1_a", "cycle_b": "cycle_l1_b"}


def renamed_metric(cfg: DictConfig, source: str) -> None:
    """``eval.metric`` under its current name, with one line when it was renamed."""
    new = RENAMED_METRICS.get(cfg.eval.metric)
    if new is not None:
        log.info("%s: eval.metric %s is %s since 0.3 (the evaluation's cycle error, unweighted); using it",
                 source, cfg.eval.metric, new)
        cfg.eval.metric = new


def objective_takes(objective: str, param: str) -> bool | None:
    """True when the installed objective ``objective`` has ``param``; None when it is not
    installed (yet: a recipe's plugin files load after the recipe)."""
    from ..loading import get_registry

    registry = get_registry()
    if objective not in registry.names("objective"):
        return None
    entry = registry.entry("objective", objective)
    return param in entry.parameters() or entry.accepts_any()


def move_keys(raw, source: str, default_objective: str) -> dict:
    """Move MOVED_TO_OBJECTIVE keys of a plain recipe dict (a YAML file's, a checkpoint's)
    into its ``objective.params``, in place; returns ``raw``. ``default_objective``: the
    schema's, for a recipe that names none."""
    train = raw.get("train")
    if not isinstance(train, dict):
        return raw
    objective = raw.get("objective") if isinstance(raw.get("objective"), dict) else {}
    name = objective.get("name") or default_objective
    for old, param in MOVED_TO_OBJECTIVE.items():
        key = old.split(".", 1)[1]
        if key not in train:
            continue
        value = train.pop(key)
        _moved(raw, name, old, param, value, source)
    return raw


def moved_override(key: str, name: str):  # -> str | None (set_key assigns it to its key: str)
    """The key an override of ``key`` sets now (``objective.params.pool_size`` for
    ``train.pool_size`` when objective ``name`` takes it), or None when it is dropped."""
    param = MOVED_TO_OBJECTIVE.get(key)
    if param is None:
        return key
    takes = objective_takes(name, param)
    if takes is False:
        log.info("%s: objective %r has no %s; ignored (before 0.2 it was an engine key CycleGAN read)",
                 key, name, param)
        return None
    log.info("%s is objective.params.%s since 0.2 (a param of the objective); set there", key, param)
    return f"objective.params.{param}"


def _moved(raw: dict, name: str, old: str, param: str, value: object, source: str) -> None:
    takes = objective_takes(name, param)
    if takes is False:
        log.info("%s: %s: objective %r has no %s; ignored (before 0.2 it was an engine key CycleGAN read)",
                 source, old, name, param)
        return
    objective = raw.setdefault("objective", {"name": name})
    if not isinstance(objective, dict):
        return
    params = objective.setdefault("params", {}) or {}
    objective["params"] = params
    if param not in params:
        params[param] = value
        log.info("%s: %s is objective.params.%s since 0.2 (a param of the objective); moved", source, old, param)


def swapped_plugins(cfg: DictConfig, overrides: Iterable[str]) -> dict[str, tuple[str, str]]:
    """{choice key: (recipe's name, new name)} for overrides that change a plugin's name."""
    swaps = {}
    for item in overrides:
        key, sep, _ = item.partition("=")
        key = key.strip()
        if not sep or not key.endswith(".name"):
            continue
        choice = key[: -len(".name")]
        node = OmegaConf.select(cfg, choice, default=None)
        if not isinstance(node, DictConfig) or "params" not in node or "name" not in node:
            continue
        try:
            new = OmegaConf.select(OmegaConf.from_dotlist([item]), key)
        except Exception:  # OmegaConf's errors and YAML's (a value that is not YAML): apply_overrides reports it
            continue
        if new != node.name:
            swaps[choice] = (node.name, new)
    return swaps


def under(key: str, choice: str) -> bool:
    return key == choice or key.startswith(choice + ".")


def clear_swapped_params(cfg: DictConfig, swaps: Mapping[str, tuple[str, str]], dropped_quick: Sequence[str],
                         overrides: Sequence[str] = ()) -> None:
    """Empty the params of each swapped plugin; one line per plugin that had some (suggesting
    ``X.params.KEY=VALUE`` only when ``overrides`` give none for the new plugin)."""
    for choice, (old, new) in swaps.items():
        params = cast(dict, OmegaConf.to_container(OmegaConf.select(cfg, choice)))["params"]  # a plugin's node
        from_quick = [k for k in dropped_quick if under(k, choice)]
        if params or from_quick:
            names = ", ".join(sorted(params)) if params else ""
            what = " and ".join(filter(None, [f"the recipe's {choice}.params ({names})" if names else "",
                                              "the quick block's " + ", ".join(from_quick) if from_quick else ""]))
            given = any(under(item.partition("=")[0].strip(), f"{choice}.params") for item in overrides)
            hint = "" if given else f"; give {choice}.params.KEY=VALUE for {new!r}"
            log.info("%s.name=%s replaces %r: %s, written for %r, are dropped%s", choice, new, old, what, old, hint)
        OmegaConf.update(cfg, f"{choice}.params", {}, merge=False)


def find_data_paths(cfg: DictConfig, recipe_path: Path) -> None:
    """Relative data paths that exist only from the recipe's folder (or the one above it)
    become absolute there, with one line saying so."""
    here = Path.cwd()
    bases = [recipe_path.parent.resolve(), recipe_path.parent.resolve().parent]
    for section in ("params", "test_params"):
        node = cfg.data[section]
        if node is None:
            continue
        for key, value in node.items():
            if not isinstance(value, str) or not value or value.startswith("~") or Path(value).is_absolute():
                continue
            if (here / value).exists():
                continue
            found = next((base / value for base in bases if (base / value).exists()), None)
            if found is not None:
                node[key] = str(found)
                log.info("data.%s.%s: %s is not in the current folder %s; using %s (relative paths are looked up "
                         "from the current folder, then beside the recipe, then in the folder above it)",
                         section, key, value, here, found)
