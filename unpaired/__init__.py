"""unpaired: unpaired image-to-image translation (CycleGAN and relatives), plugin-style."""
from .version import __version__  # noqa: F401

import os as _os  # noqa: E402

# An editable install (setuptools' strict mode, see pyproject.toml) links each source file into a
# tree on sys.path: submodules are looked up in the sources first, so that modules added since the
# install are found (in sub-packages too); the tree still provides unpaired.plugins.
_source = _os.path.dirname(_os.path.realpath(__file__))
if _source != _os.path.dirname(_os.path.abspath(__file__)):
    __path__.insert(0, _source)
elif not _os.path.isdir(_os.path.join(_source, "plugins")):
    # imported straight from a source checkout (Python puts the current folder first on sys.path,
    # so `python -m pytest` in the repository root imports these files, not the installed tree):
    # the built-ins are the checkout's top-level plugins/ folder, installed as unpaired.plugins
    import importlib.util as _util
    import sys as _sys

    _plugins = _os.path.join(_os.path.dirname(_source), "plugins")
    if _os.path.isfile(_os.path.join(_plugins, "__init__.py")):
        _spec = _util.spec_from_file_location(__name__ + ".plugins", _os.path.join(_plugins, "__init__.py"),
                                              submodule_search_locations=[_plugins])
        assert _spec is not None and _spec.loader is not None  # a file location always has both
        _sys.modules[_spec.name] = plugins = _util.module_from_spec(_spec)
        _spec.loader.exec_module(plugins)

from .errors import UnpairedError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .loading import get_registry, load_plugin_file, register_plugin, unregister_plugin  # noqa: E402
from .moved import install as _install_moved  # noqa: E402

_install_moved()  # `import unpaired.translate` and the other pre-0.2 paths keep working

__all__ = [
    "__version__",
    "hookimpl",
    "get_registry",
    "register_plugin",
    "unregister_plugin",
    "load_plugin_file",
    "UnpairedError",
    "Translator",
]


def __getattr__(name):  # the translation API loads torch: import it on first use
    if name == "Translator":
        from .inference.translate import Translator

        return Translator
    raise AttributeError(f"module 'unpaired' has no attribute {name!r}")
