"""Old import paths of modules that moved (see CHANGELOG.md, "Moved"), kept working until the
version named beside each.

``import unpaired.translate`` (and ``from unpaired.config import load_recipe`` ...) still
works: the import returns the module at its new home, with a DeprecationWarning naming it and
the version that removes the old path. Plugins import ``unpaired.api`` and never meet these.
"""
import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {  # old path: (new path, the version that removes the old path)
    # 0.1's paths (0.2 grouped the top level into data/, evaluation/, inference/, cli/, runtime/)
    "unpaired.images": ("unpaired.data.images", "0.3"),
    "unpaired.datacheck": ("unpaired.data.check", "0.3"),
    "unpaired.download": ("unpaired.data.download", "0.3"),
    "unpaired.evaluate": ("unpaired.evaluation.evaluate", "0.3"),
    "unpaired.features": ("unpaired.evaluation.features", "0.3"),
    "unpaired.metrics": ("unpaired.evaluation.metrics", "0.3"),
    "unpaired.translate": ("unpaired.inference.translate", "0.3"),
    "unpaired.tiling": ("unpaired.inference.tiling", "0.3"),
    "unpaired.video": ("unpaired.inference.video", "0.3"),
    "unpaired.export": ("unpaired.inference.export", "0.3"),
    "unpaired.cli_data": ("unpaired.cli.data", "0.3"),
    "unpaired.cli_model": ("unpaired.cli.model", "0.3"),
    "unpaired.pool": ("unpaired.plugins.pool", "0.3"),  # CycleGAN's history pool: a plugin's helper, not the engine's
    "unpaired.devices": ("unpaired.runtime.devices", "0.3"),
    "unpaired.distributed": ("unpaired.runtime.distributed", "0.3"),
    "unpaired.health": ("unpaired.runtime.health", "0.3"),
    "unpaired.runlock": ("unpaired.runtime.runlock", "0.3"),
    "unpaired.probe": ("unpaired.runtime.probe", "0.3"),
    # and the engine's modules into recipe/, engine/ and store/
    "unpaired.config": ("unpaired.recipe.config", "0.3"),
    "unpaired.recipe_rules": ("unpaired.recipe.rules", "0.3"),
    "unpaired.build": ("unpaired.engine.build", "0.3"),
    "unpaired.assemble": ("unpaired.engine.assemble", "0.3"),
    "unpaired.objective": ("unpaired.engine.objective", "0.3"),
    "unpaired.phases": ("unpaired.engine.phases", "0.3"),
    "unpaired.augment": ("unpaired.engine.augment", "0.3"),
    "unpaired.conditions": ("unpaired.engine.conditions", "0.3"),
    "unpaired.noise": ("unpaired.engine.noise", "0.3"),
    "unpaired.trainer": ("unpaired.engine.trainer", "0.3"),
    "unpaired.events": ("unpaired.engine.events", "0.3"),
    "unpaired.checkpoint": ("unpaired.store.checkpoint", "0.3"),
    "unpaired.restore": ("unpaired.engine.restore", "0.3"),
    "unpaired.files": ("unpaired.store.files", "0.3"),
    "unpaired.rng": ("unpaired.store.rng", "0.3"),
    "unpaired.vision": ("unpaired.evaluation.vision", "0.3"),
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old names only; everything else is left to the other finders. For imports
    (``import``, ``from ... import``, ``importlib.import_module``); running an old path as a
    script (``python -m unpaired.translate``) is not supported: the new paths are not scripts
    either."""

    def find_spec(self, name, path=None, target=None):
        if name in MOVED:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return None  # a placeholder module; exec_module puts the real one in its place

    def exec_module(self, module) -> None:
        new, removed = MOVED[module.__name__]
        warnings.warn(f"{module.__name__} moved to {new}; import it from there (the old path goes in {removed}; "
                      "a plugin imports unpaired.api)", DeprecationWarning, stacklevel=2)
        # the import system returns whatever sys.modules holds under the name after exec_module
        sys.modules[module.__name__] = importlib.import_module(new)


def install() -> None:
    if not any(isinstance(f, MovedModules) for f in sys.meta_path):
        sys.meta_path.append(MovedModules())
