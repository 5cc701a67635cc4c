"""The registry of named factories that plugins register: generators, discriminators,
losses, datasets, feature extractors, objectives, augmentations, backbones, constraints. Small on purpose:
``names(kind)``, ``create(kind, name, **params)`` (or ``create(kind, name, params, key=...)``),
``entry(kind, name)`` (and ``check_params``, which ``create`` runs first).
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import UnpairedError

# kind -> the registration hook that fills it
HOOKS = {
    "generator": "register_generators",
    "discriminator": "register_discriminators",
    "loss": "register_losses",
    "dataset": "register_datasets",
    "feature_extractor": "register_feature_extractors",
    "objective": "register_objectives",
    "augmentation": "register_augmentations",
    "backbone": "register_backbones",
    "constraint": "register_constraints",
}

# arguments the engine passes itself, which a recipe's params may not set
ENGINE_ARGS = {
    "generator": ("in_channels", "out_channels"),
    "discriminator": ("in_channels",),
    "loss": (),
    "dataset": (),
    "feature_extractor": (),
    "objective": ("parts",),
    "augmentation": (),
    "backbone": (),
    "constraint": ("channels", "classes"),
}


@dataclass
class PluginInfo:
    """Where a plugin came from: 'builtin', 'entry point', 'file' or 'runtime'."""

    name: str
    source: str
    dist: str = ""
    version: str = ""
    location: str = ""
    error: str = ""  # set when the plugin failed to load or register
    names: dict = field(default_factory=dict)  # kind -> [registered names]

    def describe(self) -> str:
        if self.source == "entry point":
            return f"{self.dist} {self.version}".strip()
        if self.source == "file":
            return f"file {self.location}"
        if self.source == "runtime":
            return "registered at run time"
        return f"built-in (unpaired {self.version})"


@dataclass
class Entry:
    kind: str
    name: str
    factory: Callable
    help: str
    plugin: PluginInfo

    def parameters(self) -> dict[str, Any]:
        """The factory's parameters a recipe may set: {name: default or inspect._empty}."""
        skip = ENGINE_ARGS[self.kind]
        params = {}
        for p in inspect.signature(self.factory).parameters.values():
            if p.name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            params[p.name] = p.default
        return params

    def accepts_any(self) -> bool:
        sig = inspect.signature(self.factory)
        return any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


class Registry:
    def __init__(self, plugins: Iterable[PluginInfo] = ()) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in HOOKS}
        self._clashes: dict[str, dict[str, str]] = {kind: {} for kind in HOOKS}  # kind -> name -> message
        self.plugins = list(plugins)  # PluginInfo of every plugin seen, failed ones too

    # -- filling ---------------------------------------------------------------------
    def registrar(self, kind: str, plugin: PluginInfo) -> Callable[..., None]:
        """The ``register(name, factory, help="")`` callable handed to one plugin's hook."""

        def register(name, factory, help=""):
            if not isinstance(name, str) or not name:
                raise UnpairedError(f"plugin {plugin.name!r} registered a {kind} with a bad name {name!r}")
            if not callable(factory):
                raise UnpairedError(f"plugin {plugin.name!r} registered {kind} {name!r} with a factory that is "
                                    "not callable")
            other = self._entries[kind].get(name)
            if other is not None:
                msg = (
                    f"{kind} name {name!r} is registered twice: by plugin {other.plugin.name!r} "
                    f"({other.plugin.describe()}) and by plugin {plugin.name!r} ({plugin.describe()}); "
                    "uninstall or rename one of them"
                )
                self._clashes[kind][name] = msg
                raise UnpairedError(msg)
            self._entries[kind][name] = Entry(kind, name, factory, help, plugin)
            plugin.names.setdefault(kind, []).append(name)

        return register

    # -- the public API --------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        """Sorted names registered for ``kind``."""
        return sorted(self._kind(kind))

    def entry(self, kind: str, name: str, key: str | None = None) -> Entry:
        """The Entry for ``name``; an unknown name is an error naming ``key`` (a recipe key),
        close matches, the installed plugins and those that failed to load."""
        entries = self._kind(kind)
        if name in self._clashes[kind]:
            raise UnpairedError(self._clashes[kind][name])
        if name in entries:
            return entries[name]
        where = f" (recipe key {key})" if key else ""
        msg = f"unknown {kind} {name!r}{where}."
        close = difflib.get_close_matches(str(name), list(entries), n=3, cutoff=0.5)
        if close:
            msg += " Did you mean " + " or ".join(repr(c) for c in close) + "?"
        msg += f" Installed {kind}s: " + (", ".join(sorted(entries)) or "none") + "."
        failed = [p for p in self.plugins if p.error]
        if failed:
            msg += " Plugins that failed to load: " + "; ".join(f"{p.name} ({p.error})" for p in failed) + "."
        msg += " `unpaired plugins` lists what is installed."
        raise UnpairedError(msg)

    def check_params(self, kind: str, name: str, params: dict, key: str | None = None) -> Entry:
        """Raise an UnpairedError if ``params`` don't fit the factory's signature; ``key`` is the
        recipe section (``generator``, ``losses.cycle``) that errors name."""
        entry = self.entry(kind, name, f"{key}.name" if key else None)
        where = f"{key}.params" if key else "params"
        accepted = entry.parameters()
        for engine_arg in ENGINE_ARGS[kind]:
            if engine_arg in params:
                raise UnpairedError(f"{where}.{engine_arg}: set by the engine, not by a recipe")
        if not entry.accepts_any():
            for p in params:
                if p not in accepted:
                    close = difflib.get_close_matches(p, list(accepted), n=1)
                    hint = f" Did you mean {close[0]!r}?" if close else ""
                    raise UnpairedError(
                        f"{where}.{p}: {kind} {name!r} (plugin {entry.plugin.name}) has no parameter {p!r}.{hint} "
                        f"Its parameters: {', '.join(accepted) or 'none'}."
                    )
        missing = [p for p, d in accepted.items() if d is inspect.Parameter.empty and p not in params]
        if missing:
            raise UnpairedError(f"{where}: {kind} {name!r} needs {', '.join(missing)}")
        return entry

    def create(self, kind: str, name: str, params: dict | None = None, /, *, key: str | None = None,
               **kwargs: Any) -> Any:
        """Build ``name`` of ``kind``: ``create("generator", "resnet", in_channels=3,
        out_channels=3, n_blocks=6)``. ``params``: a recipe's params as a dict (merged with the
        keyword arguments); ``key``: the recipe section (``generator``, ``losses.cycle``) that
        errors name. The engine's arguments (``ENGINE_ARGS``: channels, an objective's parts)
        are passed through; every other parameter is checked against the factory's signature.
        (A factory parameter called ``key`` goes in ``params``.)"""
        engine = {k: kwargs.pop(k) for k in ENGINE_ARGS[kind] if k in kwargs} if kind in HOOKS else {}
        params = {**(params or {}), **kwargs}
        entry = self.check_params(kind, name, params, key)
        return entry.factory(**engine, **params)

    def _kind(self, kind: str) -> dict[str, Entry]:
        if kind not in self._entries:
            raise UnpairedError(f"unknown kind {kind!r}; kinds are {', '.join(self._entries)}")
        return self._entries[kind]
