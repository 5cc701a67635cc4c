"""Old import paths of modules that moved in 0.2 (see CHANGELOG.md, "Moved"), kept working.

``import unpaired.translate`` (and ``from unpaired.images import load_image`` ...) still
works: the import returns the module at its new home, with a DeprecationWarning naming it.
"""
import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "unpaired.images": "unpaired.data.images",
    "unpaired.datacheck": "unpaired.data.check",
    "unpaired.download": "unpaired.data.download",
    "unpaired.evaluate": "unpaired.evaluation.evaluate",
    "unpaired.features": "unpaired.evaluation.features",
    "unpaired.metrics": "unpaired.evaluation.metrics",
    "unpaired.translate": "unpaired.inference.translate",
    "unpaired.tiling": "unpaired.inference.tiling",
    "unpaired.video": "unpaired.inference.video",
    "unpaired.export": "unpaired.inference.export",
    "unpaired.cli_data": "unpaired.cli.data",
    "unpaired.cli_model": "unpaired.cli.model",
    "unpaired.pool": "unpaired.plugins.pool",  # CycleGAN's history pool: a plugin's helper, not the engine's
    "unpaired.devices": "unpaired.runtime.devices",
    "unpaired.distributed": "unpaired.runtime.distributed",
    "unpaired.health": "unpaired.runtime.health",
    "unpaired.runlock": "unpaired.runtime.runlock",
    "unpaired.probe": "unpaired.runtime.probe",
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

    def exec_module(self, module):
        new = MOVED[module.__name__]
        warnings.warn(f"{module.__name__} moved to {new}; import it from there", DeprecationWarning, stacklevel=2)
        # the import system returns whatever sys.modules holds under the name after exec_module
        sys.modules[module.__name__] = importlib.import_module(new)


def install():
    if not any(isinstance(f, MovedModules) for f in sys.meta_path):
        sys.meta_path.append(MovedModules())
