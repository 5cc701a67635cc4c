"""The ``unpaired run`` command: train from a recipe."""
from __future__ import annotations

import argparse

from .args import add_plugins_arg, command


def add_run_command(sub: argparse._SubParsersAction) -> None:
    run = command(sub, cmd_run, "run", help="train from a recipe", description=(
        "Train from a recipe. Overrides are KEY=VALUE, e.g. train.max_steps=100 data.params.root=/my/data; "
        "a mapping value replaces the mapping; quote values with spaces: \"generator.params={ngf: 32}\"."))
    run.add_argument("recipe", help="a recipe YAML file, e.g. recipes/forest_abstract.yaml")
    run.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    run.add_argument("--quick", action="store_true",
                     help="a CPU preview: the recipe's `quick` block of overrides (small crops and nets, e.g. 1,000 "
                          "steps for forest_abstract)")
    run.add_argument("--resume", action="store_true", help="continue the run from its out_dir's latest checkpoint")
    run.add_argument("--print-config", action="store_true", help="print the resolved recipe and exit")
    add_plugins_arg(run)


def cmd_run(args: argparse.Namespace) -> int:
    from ..recipe.config import load_recipe, to_yaml
    from ..engine.trainer import train

    cfg = load_recipe(args.recipe, args.overrides, quick=args.quick)
    for path in args.plugins or ():
        cfg.plugins.append(path)
    if args.print_config:  # as config.yaml will hold it, --plugins included
        print(to_yaml(cfg), end="")
        return 0
    result = train(cfg, resume=args.resume)
    if result.interrupted:
        return 130 if result.interrupted == "SIGINT" else 143
    return 0
