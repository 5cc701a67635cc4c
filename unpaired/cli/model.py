"""The ``unpaired translate``, ``export`` and ``eval`` commands (a trained checkpoint at work)."""
from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from ..store import files
from ..recipe.config import plain
from ..console import make_console
from ..errors import UnpairedError
from .args import add_device_args, checkpoint_command

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from ..inference.translate import Translator

log = logging.getLogger("unpaired")
KID_SUBSET = 1000  # evaluate.kid_subsets' default subset size
COMPARABLE_NOTE = ("Only FID/KID computed with the 'inception' extractor are comparable with published "
                   "numbers (and only at equal image counts).")


def add_model_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``translate``, ``export`` and ``eval`` to the CLI's sub-parsers."""
    tr = checkpoint_command(
        subparsers, cmd_translate, "translate", help="translate images with a trained checkpoint",
        description="Translate image files, folders (recursively) and glob patterns with a checkpoint's "
                    "generator. Outputs are PNGs named after the inputs (folder inputs keep their "
                    "sub-folders); inputs are never overwritten. Full resolution by default.")
    tr.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    tr.add_argument("--out", default=None, metavar="DIR",
                    help="output folder (default: RUN_DIR/translated_<direction>/ for a run directory "
                         "(translated_<direction>_step<N>/ with --step), "
                         "./translated_<direction>/ for a checkpoint file)")
    tr.add_argument("--size", type=int, default=None, metavar="N", help="resize the shorter side to N pixels first")
    tr.add_argument("--batch-size", type=int, default=None,
                    help="same-size images per batch (default: 8 on a GPU, 1 on the CPU)")
    add_device_args(tr)
    tr.add_argument("--grid", action="store_true", help="also save grid_<direction>.png: input | output rows")
    tr.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    tr.add_argument("--tile", type=int, default=None, metavar="N",
                    help="translate in overlapping N-px tiles (bounded memory). Default: tile only when the generator "
                         "computes more than 2048x2048 pixels for the image (its padded size counts), then in "
                         "1024-px tiles; --tile N forces N-px tiles; 0 never tiles")
    tr.add_argument("--seed", type=int, default=None, metavar="N",
                    help="the noise of a stochastic translator (UNSB's sampler): the same seed gives the same "
                         "output, another seed another sample (default: the recipe's train.seed; a deterministic "
                         "translator ignores it)")

    ex = checkpoint_command(
        subparsers, cmd_export, "export", help="export a generator to ONNX or torch.export (.pt2), verified",
        description="Export a checkpoint's generator with dynamic batch, height and width (multiples of 4). "
                    "The export is run on three input sizes and compared with the PyTorch generator "
                    "before it is reported done. ONNX needs pip install \"unpaired[export]\".")
    ex.add_argument("--format", dest="fmt", choices=("onnx", "pt2"), default="onnx", help="onnx (default) or pt2")
    ex.add_argument("--out", default=None, metavar="FILE",
                    help="output file (default: generator_<direction>.<format> in the run directory)")

    ev = checkpoint_command(
        subparsers, cmd_eval, "eval",
        help="score a checkpoint on held-out data (KID, FID, cycle error, paired metrics)",
        description="Translate the held-out split both ways and report KID (mean ± std) and FID against the "
                    "real target domain, the cycle-reconstruction L1, and PSNR/SSIM/L1 where ground truth "
                    "exists (a paired dataset such as synthetic's test split, or --truth DIR). "
                    + COMPARABLE_NOTE, direction=False)
    ev.add_argument("--split", choices=("test", "train"), default="test", help="which data (default test)")
    ev.add_argument("--data", default=None, metavar="ROOT", help="override the recipe's data.params.root")
    ev.add_argument("--extractor", default=None, metavar="NAME",
                    help="feature extractor (default: the recipe's eval.extractor; 'tiny' works offline)")
    ev.add_argument("--truth", default=None, metavar="DIR", help="A->B ground truth files named like the A inputs")
    ev.add_argument("--out", default=None, metavar="DIR",
                    help="where metrics.json (and, with ground truth, per_image.csv) go (default: RUN_DIR/eval/ "
                         "(eval_step<N>/ with --step) or ./eval/)")
    ev.add_argument("--max-images", type=int, default=None, help="test images per domain (default: eval.max_images)")
    ev.add_argument("--batch-size", type=int, default=None, help="default: the recipe's eval.batch_size")
    add_device_args(ev, "; features and metrics stay fp32")


# --------------------------------------------------------------------------- translate
def cmd_translate(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..runtime.devices import keep_freed_memory
    from ..inference.translate import Translator, check_grid, default_out_dir, plan_jobs, translate_files

    translator = Translator.from_checkpoint(args.checkpoint, direction=args.direction, device=args.device,
                                            precision=args.precision, size=args.size, batch_size=args.batch_size,
                                            plugins=args.plugins, tile=args.tile, key="--direction", step=args.step,
                                            seed=args.seed, raw=args.raw)
    if translator.device.type == "cpu":  # activations of big images: reuse their memory (devices.py)
        keep_freed_memory()
    from ..inference.video import is_video

    if len(args.inputs) == 1 and is_video(args.inputs[0]):
        return translate_video_cli(translator, args)
    out = Path(args.out) if args.out else default_out_dir(args.checkpoint, args.direction, args.step)
    jobs = plan_jobs(args.inputs, out)
    grid = check_grid(jobs, out / f"grid_{args.direction}.png") if args.grid else None
    err = make_console(stderr=True)
    columns = (TextColumn("translate"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True, disable=not args.progress or not err.is_terminal) as bar:
        task = bar.add_task("translate", total=len(jobs))
        written = translate_files(translator, jobs, progress=lambda n: bar.update(task, completed=n), grid=grid)
    console = make_console()
    console.print(f"translated {len(written)} image(s) {translator.describe()} -> {out}", highlight=False)
    if grid is not None:
        console.print(f"grid: {grid}", highlight=False)
    return 0


def translate_video_cli(translator: Translator, args: argparse.Namespace) -> int:
    """``unpaired translate RUN clip.mp4 --out out.mp4``: frame by frame, with a progress bar in frames."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..inference.video import translate_video, video_target

    src = Path(args.inputs[0])
    if not src.exists():
        raise UnpairedError(f"input {src} does not exist")
    if not src.is_file():
        raise UnpairedError(f"input {src} is not a regular file (a pipe or device is never read)")
    if args.grid:
        raise UnpairedError("--grid: an input | output overview is made for images, not for a video; "
                            "translate without --grid")
    out = video_target(src, args.out, args.direction)
    columns = (TextColumn("frames"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=make_console(stderr=True), transient=True, disable=not args.progress) as bar:
        task = bar.add_task("frames", total=None)
        frames, note = translate_video(translator, src, out,
                                       progress=lambda n, total: bar.update(task, completed=n, total=total))
    make_console().print(f"translated {frames} frame(s) {translator.describe()} -> {out} ({note})", highlight=False)
    return 0


# --------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    from ..inference.export import export

    path, check = export(args.checkpoint, direction=args.direction, fmt=args.fmt, out=args.out, plugins=args.plugins,
                         step=args.step, raw=args.raw)
    sizes = ", ".join(f"{h}x{w}" for h, w in check.sizes)
    make_console().print(f"exported {args.direction} to {path} ({args.fmt}); verified against PyTorch at {sizes}: "
                    f"max error {check.max_error:.2e} <= tolerance {check.tolerance:.0e}", highlight=False)
    return 0


# --------------------------------------------------------------------------- eval
def eval_dataset(cfg: DictConfig, split: str = "test", data_root: str | os.PathLike | None = None,
                 source: str = "checkpoint") -> Any:
    """The dataset ``unpaired eval`` scores: the recipe's held-out data (data.params merged with
    data.test_params), or with ``split="train"`` its training data. ``data_root`` (``--data``,
    the data the user names) replaces data.params.root and the other paths the recipe names.
    Without it, the checkpoint's data is used only after the checks a recipe gets (its values,
    the dataset's params) and when none of its paths is a whole disk or home folder."""
    from ..engine.build import build_dataset
    from ..recipe.config import validate
    from ..loading import get_registry

    validate(cfg, f"{source}'s recipe")  # eval.max_images, eval.batch_size ... as a recipe's
    if data_root is not None:
        dropped = _drop_paths(cfg)
        cfg.data.params.root = str(data_root)
        if dropped:
            log.info("--data %s replaces the checkpoint's data paths (%s)", data_root, ", ".join(dropped))
    else:
        _check_paths(cfg, source)
    if split == "test" and cfg.data.test_params is None:
        raise UnpairedError(f"the checkpoint's recipe sets no data.test_params for dataset {cfg.data.name!r}, "
                            "so it has no held-out split (for image_folder: data.test_params={split: test}); "
                            "use --split train to score the training data")
    registry = get_registry()
    for section in ("params", "test_params"):
        if cfg.data[section] is not None:
            registry.check_params("dataset", cfg.data.name, plain(cfg.data[section]), key="data")
    dataset = build_dataset(cfg, registry, test=split == "test")
    if data_root is None:
        describe = getattr(dataset, "describe", None)
        where = describe() if describe else (f"root {cfg.data.params.root}" if "root" in cfg.data.params else "")
        log.info("data: dataset %r of the checkpoint's recipe%s (--data ROOT names other data)", cfg.data.name,
                 f", {where}" if where else "")
    return dataset


def _data_paths(cfg: DictConfig) -> Iterator[tuple[str, str, str]]:
    """(section, key, value) of the recipe's data params that name paths."""
    for section in ("params", "test_params"):
        node = cfg.data[section]
        for key, value in (node.items() if node is not None else ()):
            if isinstance(value, str) and value and (os.sep in value or value.startswith("~") or os.path.exists(value)):
                yield section, key, value


def _drop_paths(cfg: DictConfig) -> list[str]:
    dropped = []
    for section, key, value in list(_data_paths(cfg)):
        if key != "root" or section != "params":
            del cfg.data[section][key]
        dropped.append(f"data.{section}.{key}={value}")
    return dropped


def _too_wide(path: str | os.PathLike) -> bool:
    """True for a folder that holds a whole disk or home: the file-system root, the home
    folder or a folder above it."""
    try:
        p = Path(path).expanduser().resolve()
        home = Path.home().resolve()
    except (OSError, RuntimeError):
        return False
    return p in {Path(p.anchor), home, *home.parents}


def _check_paths(cfg: DictConfig, source: str) -> None:
    for section, key, value in _data_paths(cfg):
        if _too_wide(value):
            raise UnpairedError(f"{source}: its recipe's data.{section}.{key} is {value}, a folder that holds a whole "
                                "disk or home folder, not a data set; unpaired eval does not search it. Name the "
                                "data to score with --data ROOT")


# -> Path | None, not annotated: cmd_eval uses the run where best_in_metrics_csv found a value, which mypy cannot see
def run_dir_of(checkpoint_arg: str | os.PathLike):
    """The run directory of a run-directory argument or of RUN/checkpoints/X.pt (else None)."""
    p = Path(checkpoint_arg)
    if p.is_dir():
        return p
    if p.parent.name == "checkpoints" and (p.parent.parent / "config.yaml").is_file():
        return p.parent.parent
    return None


def cmd_eval(args: argparse.Namespace) -> int:
    from ..evaluation.evaluate import Evaluator, best_in_metrics_csv, check_metric, write_rows
    from ..runtime.devices import autocast_dtype, pick_device, precision_name
    from ..loading import get_registry
    from ..engine.restore import load_translators, open_checkpoint, require_plugin

    state, path, cfg = open_checkpoint(args.checkpoint, plugins=args.plugins, step=args.step,  # files: explicit only
                                       raw=args.raw)
    model, _ = load_translators(state, path=path)
    ckpt_step = state.get("step") if isinstance(state.get("step"), int) else "?"  # shown: never raw text
    run = run_dir_of(args.checkpoint)
    folder = "eval" if args.step is None else f"eval_step{args.step}"
    out = files.check_folder_path(Path(args.out) if args.out else (run or Path.cwd()) / folder, "--out")
    outputs = [out / "metrics.json", out / "per_image.csv"]
    inputs = files.Protected([path])
    for target in outputs:
        inputs.check(target, "--out", "choose another --out")
    files.remove_stale_temps_of(outputs)
    require_plugin(get_registry(), state, "dataset", "dataset", cfg.data.name, path)
    dataset = eval_dataset(cfg, args.split, args.data, source=f"checkpoint {path}")
    note = getattr(dataset, "held_out_note", None)  # a test split that holds training images says so
    if note:
        log.info("%s", note)
    extractor = args.extractor or cfg.eval.extractor
    params = dict(cfg.eval.extractor_params) if extractor == cfg.eval.extractor else {}
    device = pick_device(args.device, "--device")
    amp_dtype = autocast_dtype(args.precision, device, "--precision")
    segmenter = None
    if cfg.constraints and getattr(dataset, "label_classes", None):  # a constraint that segments: miou_a2b
        from ..engine.constraints import Constraints

        from ..store.format import channels as translator_channels

        constraints = Constraints(cfg, get_registry(), model, translator_channels(state["translators"]["a2b"], path),
                                  dict(dataset.label_classes))
        constraints.load(state["nets"], path)
        for holder in constraints.holders.values():
            holder.to(device).eval()
        segmenter = constraints.segmenter()
    evaluator = Evaluator(dataset, extractor=extractor, extractor_params=params,
                          max_images=args.max_images or cfg.eval.max_images,
                          batch_size=args.batch_size or cfg.eval.batch_size, device=device,
                          amp_dtype=amp_dtype, truth=args.truth, segmenter=segmenter)
    scores = evaluator(model.to(device))

    summary = {"checkpoint": str(path), "step": ckpt_step if ckpt_step != "?" else None, "split": args.split,
               "extractor": extractor, "weights": state.get("weights", "trained"),
               "device": str(device), "precision": precision_name(amp_dtype),
               "images": evaluator.n, "paired": evaluator.paired or args.truth is not None, "metrics": scores}
    files.write_text(out / "metrics.json", json.dumps(summary, indent=2) + "\n")
    if evaluator.rows:
        write_rows(evaluator.rows, out / "per_image.csv")

    console = make_console()
    split = "training images (no held-out split)" if note or args.split == "train" else f"{args.split} split"
    console.print(render_scores(scores, extractor, evaluator.n, split, ckpt_step))
    if "miou_a2b" in scores:  # a constraint's segmenter on the translations, against A's labels
        per_class = ", ".join(f"{k.removeprefix('iou_a2b_')}: {v:.3f}" for k, v in scores.items()
                              if k.startswith("iou_a2b_"))
        console.print(f"content kept (A->B, the constraint's segmenter against A's labels): mIoU "
                      f"{scores['miou_a2b']:.3f}; per class {per_class}", highlight=False)
    spreads = [scores[k] for k in ("kid_a2b_std", "kid_b2a_std") if k in scores]
    if spreads and not any(spreads):
        console.print(f"* no KID spread: KID averages over random subsets of up to {KID_SUBSET:,} images per set; "
                      f"with {evaluator.n} images every subset is the whole set, so there is one value (std 0). "
                      "Compare runs at equal image counts.", highlight=False)
    weights = " (the averaged generator, train.ema; --raw: the trained weights)" \
        if state.get("weights") == "averaged" else ""
    console.print(f"generators ran on {device} {precision_name(amp_dtype)}{weights}", highlight=False)
    console.print(Text.assemble(("note:", "bold"), f" features from extractor {extractor!r}. {COMPARABLE_NOTE}"
                                + ("" if extractor == "inception" else f" These {extractor!r} numbers are NOT.")))
    metric = cfg.eval.metric
    best = best_in_metrics_csv(run / "metrics.csv", metric) if run is not None else None
    if best is not None:
        try:
            check_metric(metric)
        except UnpairedError:
            best = None
    if best is not None:
        value, step, last, last_step = best
        final = scores.get(metric)
        kept = " (kept as checkpoints/best.pt)" if (run / "checkpoints" / "best.pt").is_file() else ""
        console.print(
            f"{metric}: final (this checkpoint, step {ckpt_step}, scored now with {extractor!r}): "
            f"{_fmt(final)}; best during training: {_fmt(value)} at step {step}{kept}, "
            f"last logged during training: {_fmt(last)} at step {last_step} — the training values come from "
            f"metrics.csv, scored with the recipe's eval settings (extractor {cfg.eval.extractor!r}, "
            f"max_images {cfg.eval.max_images}).", highlight=False)
    console.print(f"wrote {out / 'metrics.json'}" + (f" and {out / 'per_image.csv'}" if evaluator.rows else ""),
                  highlight=False)
    return 0


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def render_scores(scores: Mapping[str, float], extractor: str, n: int, split: str, step: int | str) -> Table:
    table = Table(title=f"{split}, {n} images per domain, step {step}", show_edge=False, header_style="bold")
    for col in ("direction", "KID (mean ± std)", f"FID [{extractor}]", "cycle L1", "PSNR", "SSIM", "L1"):
        table.add_column(col, justify="right" if col != "direction" else "left")
    for d, cyc in (("a2b", "cycle_l1_a"), ("b2a", "cycle_l1_b")):
        if f"kid_{d}" not in scores:
            continue  # a one-sided objective translates a2b only
        table.add_row(
            "A→B" if d == "a2b" else "B→A",
            f"{scores[f'kid_{d}']:.4f} ± {scores[f'kid_{d}_std']:.4f}" if scores[f"kid_{d}_std"] else
            f"{scores[f'kid_{d}']:.4f} (no spread*)",
            f"{scores[f'fid_{d}']:.2f}",
            f"{scores[cyc]:.4f}" if cyc in scores else "-",
            *(f"{scores[k]:.4f}" if k in scores else "-" for k in (f"psnr_{d}", f"ssim_{d}", f"l1_{d}")),
        )
    return table
