"""Two rules that make a recipe predictable from anywhere (used by ``load_recipe``).

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
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

log = logging.getLogger("unpaired")


def swapped_plugins(cfg, overrides):
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
        except OmegaConfBaseException:
            continue  # apply_overrides reports it
        if new != node.name:
            swaps[choice] = (node.name, new)
    return swaps


def under(key, choice):
    return key == choice or key.startswith(choice + ".")


def clear_swapped_params(cfg, swaps, dropped_quick):
    """Empty the params of each swapped plugin; one line per plugin that had some."""
    for choice, (old, new) in swaps.items():
        params = OmegaConf.to_container(OmegaConf.select(cfg, choice))["params"]
        from_quick = [k for k in dropped_quick if under(k, choice)]
        if params or from_quick:
            names = ", ".join(sorted(params)) if params else ""
            what = " and ".join(filter(None, [f"the recipe's {choice}.params ({names})" if names else "",
                                              "the quick block's " + ", ".join(from_quick) if from_quick else ""]))
            log.info("%s.name=%s replaces %r: %s, written for %r, are dropped; give %s.params.KEY=VALUE for %r",
                     choice, new, old, what, old, choice, new)
        OmegaConf.update(cfg, f"{choice}.params", {}, merge=False)


def find_data_paths(cfg, recipe_path):
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
