"""unpaired: unpaired image-to-image translation (CycleGAN and relatives), plugin-style."""
__version__ = "0.2.0.dev0"

import os as _os  # noqa: E402

# An editable install (setuptools' strict mode, see pyproject.toml) links each source file into a
# tree on sys.path; modules added to the sources since then are found in the sources themselves.
_source = _os.path.dirname(_os.path.realpath(__file__))
if _source != _os.path.dirname(_os.path.abspath(__file__)):
    __path__.append(_source)

from .errors import UnpairedError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .loading import get_registry, load_plugin_file, register_plugin, unregister_plugin  # noqa: E402

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
        from .translate import Translator

        return Translator
    raise AttributeError(f"module 'unpaired' has no attribute {name!r}")
