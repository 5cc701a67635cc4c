"""The ``unpaired data`` command: ``download NAME``, ``list`` and ``check ROOT``."""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from ..console import make_console
from ..data.check import check_data
from ..data.download import DATASETS, MIRROR_ENV, dataset_url, download_dataset, list_datasets
from .args import command


def add_data_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``data`` with its sub-commands to the CLI's sub-parsers; returns the ``data`` parser."""
    data: argparse.ArgumentParser = command(
        subparsers, lambda args: _print_help(data), "data", help="download, list and check image data sets",
        description="Download the public CycleGAN data sets and check image folders.")
    commands = data.add_subparsers(dest="data_command", metavar="{download,list,check}")

    download = command(
        commands, cmd_download, "download", help="download a public CycleGAN data set",
        description=f"Download, verify and extract a data set into ROOT/NAME. Known sets: "
                    f"{', '.join(DATASETS)}. Set {MIRROR_ENV} to a mirror's base URL to use it instead "
                    f"of the Berkeley server.")
    download.add_argument("name", metavar="NAME", help="data set name (see 'unpaired data list')")
    download.add_argument("--root", default="data", help="folder that receives ROOT/NAME (default: data)")
    download.add_argument("--url", default=None,
                          help="download this zip instead (same layout; NAME may then be any folder name)")
    download.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    listing = command(commands, cmd_list, "list", help="list the known data sets and which are downloaded")
    listing.add_argument("--root", default="data", help="where downloaded sets live (default: data)")

    check = command(
        commands, cmd_check, "check", help="report on an image folder and whether training can use it",
        description="Counts, sizes, modes, duplicate and unusable files of ROOT/trainA, trainB, testA, "
                    "testB (or of two domain folders given with --a and --b). Exit code 1 when a "
                    "training run would refuse the data.")
    check.add_argument("root", metavar="ROOT", help="the data folder")
    check.add_argument("--a", default=None, metavar="DIR", help="domain A folder (inside ROOT, else as given)")
    check.add_argument("--b", default=None, metavar="DIR", help="domain B folder (inside ROOT, else as given)")
    check.add_argument("--on-bad-file", choices=("skip", "error"), default="skip",
                       help="the run's data.params.on_bad_file: with 'error' any unusable file fails the "
                            "check (default: skip)")
    return data


def cmd_download(args: argparse.Namespace) -> int:
    download_dataset(args.name, root=args.root, url=args.url, progress=getattr(args, "progress", True),
                     console=Console(stderr=True, markup=False))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    table = Table(show_edge=False, header_style="bold")
    for column in ("name", "downloaded", "contents"):
        table.add_column(column, no_wrap=column != "contents")
    entries = list_datasets(args.root)
    for entry in entries:
        table.add_row(entry.name, "yes" if entry.present else "-", entry.description)
    console = make_console()
    console.print(table)
    console.print(f"Downloaded sets live in {args.root}/NAME; archives come from "
                  f"{dataset_url('NAME')} (set {MIRROR_ENV} for a mirror).")
    console.print("Get one with: unpaired data download NAME --root " + str(args.root))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    report = check_data(args.root, a=args.a, b=args.b, on_bad_file=args.on_bad_file, progress=True)
    make_console().print(report.render())
    return report.exit_code


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
