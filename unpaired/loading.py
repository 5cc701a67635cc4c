"""Finding plugins: the built-ins, third-party packages (entry-point group ``unpaired``),
local files, and objects registered at run time. A plugin that fails to import or to
register is recorded and reported (`unpaired plugins`); it never takes the host down.
"""
import importlib
import importlib.metadata as md
import importlib.util
import os
from pathlib import Path

import pluggy

from . import hookspecs
from .version import __version__
from .errors import UnpairedError
from .registry import HOOKS, PluginInfo, Registry

BUILTIN_MODULES = (
    "unpaired.plugins.cyclegan",
    "unpaired.plugins.cut",
    "unpaired.plugins.unsb",
    "unpaired.plugins.resnet",
    "unpaired.plugins.patchgan",
    "unpaired.plugins.projected",
    "unpaired.plugins.efficientnet_lite",
    "unpaired.plugins.losses",
    "unpaired.plugins.augmentations",
    "unpaired.plugins.constraints",
    "unpaired.plugins.datasets",
    "unpaired.plugins.synthetic",
    "unpaired.plugins.features",
    "unpaired.plugins.progress",
    "unpaired.plugins.metrics_csv",
    "unpaired.plugins.samples",
    "unpaired.plugins.figure",
    "unpaired.plugins.report",
    "unpaired.plugins.tensorboard",
)

_pm = None
_infos: dict[str, PluginInfo] = {}  # plugin name -> PluginInfo
_registry = None


def plugin_manager():
    """The process-wide pluggy PluginManager, with built-ins and entry points loaded."""
    global _pm
    if _pm is None:
        _pm = pluggy.PluginManager(hookspecs.PROJECT)
        _pm.add_hookspecs(hookspecs)
        for modname in BUILTIN_MODULES:
            _pm.register(importlib.import_module(modname), name=modname)
            _infos[modname] = PluginInfo(modname, "builtin", "unpaired", __version__)
        _load_entry_points(_pm)
        _check_pending(_pm)
    return _pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    for ep in md.entry_points(group=hookspecs.PROJECT):
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, "entry point", dist.name if dist else "?", dist.version if dist else "?", ep.value)
        _infos[ep.name] = info
        if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken third-party plugin is reported, not fatal
            info.error = f"{type(exc).__name__}: {exc}"


def _check_pending(pm: pluggy.PluginManager) -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = getattr(exc, "plugin_name", None) or pm.get_name(exc.plugin)
        pm.unregister(name=name)
        if name in _infos:
            _infos[name].error = f"unknown hook: {exc}"
        _check_pending(pm)


def register_plugin(plugin: object, name: str | None = None, *, _source: str = "runtime", _location: str = "") -> str:
    """Register a plugin object or module at run time (tests, notebooks); returns its name."""
    global _registry
    pm = plugin_manager()
    try:
        registered = pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise UnpairedError(f"cannot register plugin {name or plugin!r}: {exc}") from None
    if registered is None:  # pluggy's answer for a blocked name
        raise UnpairedError(f"cannot register plugin {name or plugin!r}: its name is blocked in this process")
    name = registered
    _infos[name] = PluginInfo(name, _source, location=_location)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        pm.unregister(name=name)
        del _infos[name]
        raise UnpairedError(f"plugin {name}: {exc}") from None
    _registry = None
    return name


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered at run time."""
    global _registry
    plugin_manager().unregister(name=name)
    _infos.pop(name, None)
    _registry = None


def load_plugin_file(path: str | os.PathLike) -> str:
    """Import a local Python file as a plugin (recipe key ``plugins`` or ``--plugins``)."""
    path = Path(path).expanduser().resolve()
    name = f"file:{path}"
    pm = plugin_manager()
    if pm.has_plugin(name):
        return name
    if not path.is_file():
        raise UnpairedError(f"plugin file {path} does not exist")
    if path.suffix != ".py":
        raise UnpairedError(f"plugin file {path} is not a Python file (.py); a plugin is a .py file with "
                            "hook implementations, or an installed package")
    spec = importlib.util.spec_from_file_location(f"unpaired_local_{path.stem}", path)
    assert spec is not None and spec.loader is not None  # a .py file's location always has both
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UnpairedError(f"plugin file {path} failed to import: {type(exc).__name__}: {exc}") from None
    return register_plugin(module, name=name, _source="file", _location=str(path))


def get_registry() -> Registry:
    """The Registry of every installed plugin's names (built anew after a registration)."""
    global _registry
    if _registry is None:
        pm = plugin_manager()
        registry = Registry(_infos.values())
        for info in _infos.values():
            info.names = {}
        for kind, hook_name in HOOKS.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                info = _infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, "runtime")
                if info.error:
                    continue
                try:
                    impl.function(register=registry.registrar(kind, info))
                except UnpairedError as exc:  # a name clash: both plugins are named
                    info.error = str(exc)
                except Exception as exc:  # a plugin that breaks while registering is reported
                    info.error = f"{hook_name} raised {type(exc).__name__}: {exc}"
        _registry = registry
    return _registry


def all_plugins() -> list[PluginInfo]:
    plugin_manager()
    get_registry()
    return list(_infos.values())
