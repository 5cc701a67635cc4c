"""The built-in plugins of unpaired, installed as ``unpaired.plugins``.

Each module is an ordinary plugin (hook implementations marked ``@unpaired.hookimpl``),
registered directly by the core rather than through entry points.
"""
