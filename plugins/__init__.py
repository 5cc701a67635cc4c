"""The built-in plugins of unpaired, installed as ``unpaired.plugins``.

Each module is an ordinary plugin (hook implementations marked ``@unpaired.hookimpl``),
registered directly by the core rather than through entry points.
"""

import os as _os

# An editable install links each file (see unpaired/__init__.py): plugin modules added since
# then are found in the sources too.
_source = _os.path.dirname(_os.path.realpath(__file__))
if _source != _os.path.dirname(_os.path.abspath(__file__)):
    __path__.append(_source)
