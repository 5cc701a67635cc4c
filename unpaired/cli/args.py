"""What the commands share: how a sub-command is declared, and the arguments of every
command that loads a checkpoint or runs generators."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..recipe.config import PRECISIONS


def command(subparsers: argparse._SubParsersAction, func: Callable[[argparse.Namespace], int], name: str, help: str,
            **kwargs: Any) -> argparse.ArgumentParser:
    """A sub-command ``name`` that runs ``func(args)`` (its exit code); ``kwargs`` go to
    ``add_parser`` (``description``: the longer text of ``--help``)."""
    parser = subparsers.add_parser(name, help=help, **kwargs)
    parser.set_defaults(func=func)
    return parser


def add_checkpoint_args(parser: argparse.ArgumentParser, direction: bool = True) -> None:
    """What every command that loads a checkpoint takes: the checkpoint (or run directory),
    ``--step`` (one of the run's kept checkpoints), ``--raw``, ``--plugins`` (the only way a
    plugin file is loaded for it) and, for one generator, ``--direction``."""
    parser.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN_DIR", help="a .pt checkpoint or a run directory")
    parser.add_argument("--step", type=int, default=None, metavar="N",
                        help="the run's checkpoint of step N (checkpoints/step_<N>.pt, kept by train.keep_every); "
                             "default: its latest")
    add_raw_arg(parser)
    add_plugins_arg(parser)
    if direction:
        parser.add_argument("--direction", choices=("a2b", "b2a"), default="a2b",
                            help="which generator (default a2b; a one-sided objective has only a2b)")


def add_raw_arg(parser: argparse.ArgumentParser) -> None:
    """``--raw``: the trained weights rather than the averaged generator a run with
    ``train.ema`` keeps (the default wherever a checkpoint holds one)."""
    parser.add_argument("--raw", action="store_true",
                        help="use the trained weights, not the averaged generator (a run with train.ema keeps one, "
                             "and it is the default)")


def add_plugins_arg(parser: argparse.ArgumentParser) -> None:
    """``--plugins FILE`` (repeatable): local plugin files loaded first, for a run whose
    networks or dataset come from one; never loaded from a checkpoint."""
    parser.add_argument("--plugins", action="append", metavar="FILE", default=[],
                        help="load a local plugin file first (repeatable; it runs Python: only files you trust)")


def add_device_args(parser: argparse.ArgumentParser, note: str = "") -> None:
    """``--device`` and ``--precision`` of a command that runs generators (fp16 is for training)."""
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:1 ...")
    parser.add_argument("--precision", choices=[p for p in PRECISIONS if p != "fp16"], default="auto",
                        help="the generators' autocast: auto is bf16 on a GPU and on a CPU with native bf16 "
                             "(AVX-512 BF16, AMX), fp32 otherwise" + note)


def checkpoint_command(subparsers: argparse._SubParsersAction, func: Callable[[argparse.Namespace], int], name: str,
                       help: str, direction: bool = True, **kwargs: Any) -> argparse.ArgumentParser:
    """A sub-command that works on a trained checkpoint (``translate``, ``export``, ``eval``)."""
    parser = command(subparsers, func, name, help, **kwargs)
    add_checkpoint_args(parser, direction)
    return parser
