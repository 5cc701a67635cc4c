"""The ``unpaired plugins`` command: what is installed and what each plugin registers."""
from __future__ import annotations

import argparse
import inspect

from rich.table import Table
from rich.text import Text

from ..console import make_console
from .args import add_plugins_arg, command


def add_plugins_command(sub: argparse._SubParsersAction) -> None:
    plugins = command(sub, cmd_plugins, "plugins", help="list installed plugins and what they register")
    plugins.add_argument("-v", "--verbose", action="store_true", help="also each factory's parameters and defaults")
    add_plugins_arg(plugins)


def cmd_plugins(args: argparse.Namespace) -> int:
    from ..engine.events import EVENTS
    from ..loading import all_plugins, get_registry, load_plugin_file, plugin_manager
    from ..registry import HOOKS

    for path in args.plugins or ():
        load_plugin_file(path)
    registry = get_registry()
    console = make_console()
    table = Table(title="unpaired plugins", show_lines=False)
    for col in ("plugin", "from", "registers"):
        table.add_column(col, no_wrap=col == "plugin")  # a name is never cut
    failed = []
    pm = plugin_manager()
    for info in all_plugins():
        parts = [f"{kind}: {', '.join(n)}" for kind, n in info.names.items()]
        plugin = pm.get_plugin(info.name)
        events = [h.name for h in (pm.get_hookcallers(plugin) or []) if h.name in EVENTS] if plugin else []
        if events:
            parts.append("events: " + ", ".join(sorted(events, key=EVENTS.index)))
        names = "; ".join(parts) or "- (nothing active)"
        table.add_row(info.name, info.describe(), names)
        if info.error:
            failed.append(info)
    console.print(table)
    if args.verbose:
        for kind in HOOKS:
            for name in registry.names(kind):
                entry = registry.entry(kind, name)
                params = ", ".join(p if d is inspect.Parameter.empty else f"{p}={d!r}"
                                   for p, d in entry.parameters().items())
                roles = getattr(entry.factory, "losses", None) if kind == "objective" else None
                uses = ""
                if roles:  # the loss roles an objective reads from the recipe, with their defaults
                    uses = "  losses: " + ", ".join(
                        f"{role}={d['name']} x{d.get('weight', 1.0):g}" if d else f"{role} (recipe must set)"
                        for role, d in roles.items())
                console.print(Text.assemble((f"{kind} {name}", "bold"), f"({params}){uses}  ", (entry.help, "dim")))
    for info in failed:
        console.print(Text.assemble(("failed:", "red"), f" {info.name} ({info.describe()}): {info.error}"))
    return 0
