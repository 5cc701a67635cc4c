"""The ``unpaired report``, ``compare`` and ``serve`` commands: looking at results."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.text import Text

from ..console import make_console
from ..errors import UnpairedError, number
from .args import add_device_args, add_plugins_arg, add_raw_arg, command


def add_results_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report``, ``compare`` and ``serve`` to the CLI's sub-parsers."""
    rep = command(subparsers, cmd_report, "report", help="write RUN_DIR/report.html: curves, timeline, figure",
                  description="Write RUN_DIR/report.html, one self-contained page (no network; open it from disk): "
                              "the recipe and device, loss curves per phase (raw and smoothed), evaluation metrics "
                              "per step, the held-out images translated at each kept step (train.keep_every) and "
                              "the final figure. `unpaired run` refreshes it at each checkpoint.")
    rep.add_argument("run_dir", metavar="RUN_DIR", help="a run directory")
    rep.add_argument("--device", default="auto", help="where the timeline's checkpoints run (auto, cpu, cuda ...)")
    add_raw_arg(rep)
    add_plugins_arg(rep)

    cmp = command(subparsers, cmd_compare, "compare", help="one grid: the same images translated by several runs",
                  description="Translate the same images with each run (RUN, or RUN@STEP for a kept step, or a "
                              "checkpoint file) and write one grid: a row per image, the input then one column "
                              "per model, labelled with the run's name, objective and step.")
    cmp.add_argument("items", nargs="+", metavar="RUN[@STEP] ... IMAGE",
                     help="run directories or checkpoints (RUN@STEP: a kept step), then image files, folders or globs")
    cmp.add_argument("--out", required=True, metavar="GRID.png", help="the grid to write (.png or .jpg)")
    cmp.add_argument("--direction", choices=("a2b", "b2a"), default="a2b", help="which generator (default a2b)")
    cmp.add_argument("--size", type=int, default=256, metavar="N",
                     help="resize each image's shorter side to N pixels first (default 256; 0: full resolution)")
    cmp.add_argument("--max-images", type=int, default=16, metavar="N", help="rows at most (default 16)")
    add_raw_arg(cmp)
    add_plugins_arg(cmp)
    add_device_args(cmp)

    srv = command(subparsers, cmd_serve, "serve", help="a local web page that translates the images you drop on it",
                  description="Serve a page where you drop or pick an image, choose the direction (and a kept step) "
                              "and see the input and its translation side by side, with a blend slider and a "
                              "download link (the last few kept). Scripts POST the image file to "
                              "/translate?direction=a2b (&step=N) and get a PNG back. Bound to 127.0.0.1 (this "
                              "machine only) unless --host says otherwise. Ctrl-C or SIGTERM finishes the translation "
                              "in progress (up to 10 s; a second signal abandons it) and exits.")
    srv.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (or a checkpoint file)")
    srv.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0: any free port)")
    srv.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1; 0.0.0.0 opens it to your network)")
    srv.add_argument("--max-upload-mb", action=Number, low=0, above=True, default=50.0, metavar="MB",
                     help="largest upload, in MB (default 50)")
    srv.add_argument("--max-megapixels", action=Number, low=0, above=True, default=64.0, metavar="MP",
                     help="largest image, in millions of pixels (default 64; larger ones are refused as possible "
                          "decompression bombs)")
    srv.add_argument("--tile", action=Number, low=0, integer=True, default=None,
                     help="translate in overlapping N-px tiles (default: images over 2048 x 2048, as translate; "
                          "0: never)")
    add_raw_arg(srv)
    add_plugins_arg(srv)
    add_device_args(srv)


def cmd_report(args: argparse.Namespace) -> int:
    from ..runtime.devices import pick_device
    from ..report import write_report

    path = write_report(args.run_dir, plugins=args.plugins, device=pick_device(args.device, "--device"), raw=args.raw)
    make_console().print(f"report: {path} (open it in a browser; it needs no network)", highlight=False)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..inference.compare import compare, split_models_and_images

    models, images = split_models_and_images(args.items)
    result = compare(models, images, Path(args.out), direction=args.direction, size=args.size or None,
                     max_images=args.max_images, device=args.device, precision=args.precision, plugins=args.plugins,
                     raw=args.raw)
    console = make_console()
    if result.left_out:
        console.print(f"showing the first {result.rows} of {result.rows + result.left_out} images (--max-images)",
                      highlight=False)
    console.print(f"compared {len(models)} model(s) on {result.rows} image(s) ({args.direction}) -> {result.path}",
                  highlight=False)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ..inference.serve import Limits, make_server, serve_until_stopped
    from ..runtime.devices import keep_freed_memory, pick_device

    if pick_device(args.device, "--device").type == "cpu":  # as translate does; before any thread allocates
        keep_freed_memory(one_arena=True)  # the translations run in the request threads
    limits = Limits(upload_bytes=int(args.max_upload_mb * 2**20), pixels=int(args.max_megapixels * 1e6))
    server = make_server(args.run_dir, host=args.host, port=args.port, limits=limits, device=args.device,
                         precision=args.precision, tile=args.tile, plugins=args.plugins, raw=args.raw)
    console = make_console()
    console.print(f"serving {server.app.describe()} on {server.url} (Ctrl-C stops)", markup=False, highlight=False)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(Text.assemble(("note:", "bold"), f" --host {args.host}: other machines can reach this page; "
                                    "it has no password"))
    return serve_until_stopped(server, say=lambda text: console.print(text, markup=False, highlight=False))


class Number(argparse.Action):
    """An option's number checked as argparse reads it (errors.number: finite, within bounds):
    a bad one exits 2 naming the flag and the value before anything is loaded."""

    def __init__(self, *args: Any, low: float | None = None, above: bool = False, integer: bool = False,
                 **kwargs: Any) -> None:
        kwargs.setdefault("metavar", "N")
        super().__init__(*args, **kwargs)
        self.low, self.above, self.integer = low, above, integer

    # text: the option's text (a str; argparse.Action declares str | Sequence[Any] | None)
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, text,
                 option_string: str | None = None) -> None:
        value = text
        try:
            value = int(text) if self.integer else float(text)
        except ValueError:
            pass  # number() names the text as typed
        try:
            number(option_string, value, self.low, above=self.above, integer=self.integer)
        except UnpairedError as exc:
            parser.error(str(exc))
        setattr(namespace, self.dest, value)
