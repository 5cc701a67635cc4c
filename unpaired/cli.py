"""The command line: ``unpaired run``, ``unpaired plugins`` (and ``python -m unpaired``)."""
import argparse
import inspect
import logging
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import __version__
from .cli_data import add_data_commands
from .cli_model import add_model_commands
from .console import log_handler, make_console
from .errors import UnpairedError, user_message

EXIT_USER_ERROR = 2


def cmd_run(args):
    from .config import load_recipe, to_yaml
    from .trainer import train

    cfg = load_recipe(args.recipe, args.overrides, quick=args.quick)
    if args.print_config:
        print(to_yaml(cfg), end="")
        return 0
    for path in args.plugins or ():
        cfg.plugins.append(path)
    result = train(cfg, resume=args.resume)
    if result.interrupted:
        return 130 if result.interrupted == "SIGINT" else 143
    return 0


def cmd_plugins(args):
    from .events import EVENTS
    from .loading import all_plugins, get_registry, load_plugin_file, plugin_manager
    from .registry import HOOKS

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
                console.print(f"[bold]{kind} {name}[/]({params}){uses}  [dim]{entry.help}[/]", highlight=False)
    for info in failed:
        console.print(f"[red]failed:[/] {info.name} ({info.describe()}): {info.error}", highlight=False)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="unpaired", description="Unpaired image-to-image translation (CycleGAN).")
    parser.add_argument("--version", action="version", version=f"unpaired {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="train from a recipe", description=(
        "Train from a recipe. Overrides are KEY=VALUE, e.g. train.max_steps=100 data.params.root=/my/data; "
        "a mapping value replaces the mapping; quote values with spaces: \"generator.params={ngf: 32}\"."))
    run.add_argument("recipe", help="a recipe YAML file, e.g. recipes/forest_abstract.yaml")
    run.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    run.add_argument("--quick", action="store_true", help="a CPU preview: the recipe's `quick` overrides (small crops and nets, a few hundred steps)")
    run.add_argument("--resume", action="store_true", help="continue the run from its out_dir's latest checkpoint")
    run.add_argument("--print-config", action="store_true", help="print the resolved recipe and exit")
    run.add_argument("--plugins", action="append", metavar="FILE", help="load a local plugin file (repeatable)")
    run.set_defaults(func=cmd_run)

    plugins = sub.add_parser("plugins", help="list installed plugins and what they register")
    plugins.add_argument("-v", "--verbose", action="store_true", help="also each factory's parameters and defaults")
    plugins.add_argument("--plugins", action="append", metavar="FILE", help="load a local plugin file too")
    plugins.set_defaults(func=cmd_plugins)

    add_data_commands(sub)
    add_model_commands(sub)
    return parser


def split_override(argv):
    """``KEY={a: 1, b: 2}`` typed unquoted reaches us as ``KEY={a:``, ``1,`` ... : the first such
    argument rejoined, or None."""
    def depth(text):
        return text.count("{") + text.count("[") - text.count("}") - text.count("]")

    for i, arg in enumerate(argv):
        key, sep, value = arg.partition("=")
        if not sep or key.startswith("-") or depth(value) <= 0:
            continue
        pieces, level = [arg], depth(value)
        for more in argv[i + 1:]:
            if level <= 0:
                break
            pieces.append(more)
            level += depth(more)
        return " ".join(pieces)
    return None


def main(argv=None):
    parser = build_parser()
    whole = split_override(sys.argv[1:] if argv is None else list(argv))
    if whole is not None:
        Console(stderr=True, soft_wrap=True).print(Text.assemble(
            ("error: ", "bold red"), f"the shell split the override {whole.split(' ')[0]!r} at its spaces: quote it, "
            f"e.g. '{whole}'"), highlight=False)
        return EXIT_USER_ERROR
    args, extra = parser.parse_known_args(argv)
    if extra:  # overrides may come before or after the options
        bad = [x for x in extra if x.startswith("-") or "=" not in x or not hasattr(args, "overrides")]
        if bad:
            parser.error(f"unrecognized arguments: {' '.join(bad)}")
        args.overrides = list(args.overrides) + extra
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[log_handler()])
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return args.func(args)
    except UnpairedError as exc:
        if args.debug:
            raise
        Console(stderr=True, soft_wrap=True).print(Text.assemble(("error: ", "bold red"), user_message(exc)), highlight=False)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
