"""The command line (``unpaired`` and ``python -m unpaired``): one module per command group,
each adding its sub-commands to the parser built here.

    run.py      unpaired run                    train from a recipe
    plugins.py  unpaired plugins                what is installed
    data.py     unpaired data ...               download, list, check image data sets
    model.py    unpaired translate|export|eval  a trained checkpoint at work
    results.py  unpaired report|compare|serve   looking at results: a report, a grid, a local page
"""
import argparse
import logging
import shlex
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from ..version import __version__
from .data import add_data_commands
from .model import add_model_commands
from .plugins import add_plugins_command
from .results import add_results_commands
from .run import add_run_command
from ..console import log_handler, make_console, printable
from ..errors import UnpairedError, problem_lines, user_message

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unpaired",
                                     description="Unpaired image-to-image translation (CycleGAN, CUT and relatives).")
    parser.add_argument("--version", action="version", version=f"unpaired {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    add_run_command(sub)
    add_plugins_command(sub)
    add_data_commands(sub)
    add_model_commands(sub)
    add_results_commands(sub)
    return parser


def split_override(argv: Sequence[str]) -> str | None:
    """``KEY={a: 1, b: 2}`` typed unquoted reaches us as ``KEY={a:``, ``1,`` ... : the first such
    argument rejoined, or None. Only a value that opens a YAML mapping or list (``{`` or ``[``
    first) and whose brackets the following arguments close counts; options are never folded in,
    so ``out_dir=/tmp/exp[2`` is a value of its own."""
    def depth(text: str) -> int:
        return text.count("{") + text.count("[") - text.count("}") - text.count("]")

    for i, arg in enumerate(argv):
        key, sep, value = arg.partition("=")
        if not sep or key.startswith("-") or not value.startswith(("{", "[")) or depth(value) <= 0:
            continue
        pieces, level = [arg], depth(value)
        for more in argv[i + 1:]:
            if level <= 0 or more.startswith("-"):
                break
            pieces.append(more)
            level += depth(more)
        if level <= 0:
            return " ".join(pieces)
    return None


LONGEST_LINE = 2000  # characters of one error line; a longer one (a value from a file) is cut


def _cut(line: str) -> str:
    return line if len(line) <= LONGEST_LINE else f"{line[:LONGEST_LINE]}... (cut: {len(line):,} characters)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    whole = split_override(sys.argv[1:] if argv is None else list(argv))
    if whole is not None:
        Console(stderr=True, soft_wrap=True).print(Text.assemble(
            ("error: ", "bold red"), printable(f"the shell split the override {whole.split(' ')[0]!r} at its spaces: "
                                          f"quote it, e.g. {shlex.quote(whole)}")), highlight=False)
        return EXIT_USER_ERROR
    args, extra = parser.parse_known_args(argv)
    if extra:  # overrides may come before or after the options
        bad = [x for x in extra if x.startswith("-") or "=" not in x or not hasattr(args, "overrides")]
        if bad:
            parser.error(f"unrecognized arguments: {' '.join(bad)}")
        args.overrides = list(args.overrides) + extra
    # our lines at INFO; other libraries' (the ONNX exporter's "Replaced initializer ...") at WARNING
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[log_handler()])
    logging.getLogger("unpaired").setLevel(logging.INFO)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return args.func(args)
    except UnpairedError as exc:
        if args.debug:
            raise
        lines = getattr(exc, "problems", None) or [user_message(exc)]  # a line break in a name forges no line
        text = problem_lines([_cut(printable(line, newlines=False)) for line in lines])
        Console(stderr=True, soft_wrap=True).print(Text.assemble(("error: ", "bold red"), text), highlight=False)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        make_console(stderr=True).print("interrupted")
        return 130
