"""The run report: ``unpaired report RUN_DIR`` writes ``RUN_DIR/report.html``, one
self-contained page (unpaired/report/page.py) of

* the run: its first line (device, precision, threads) and its recipe;
* loss curves per phase, the objective's terms, the schedule and speed, raw and smoothed
  (metrics.csv; unpaired/report/curves.py, drawn as SVG by unpaired/report/svg.py);
* KID / FID and the other evaluation metrics per step, when ``eval.every`` ran;
* the sample timeline: the same held-out images translated at each kept step
  (unpaired/report/timeline.py says why from the checkpoints);
* the final figure and the sample grids written during training.

The ``report`` plugin (plugins/report.py) refreshes it at each checkpoint and at the end.
"""
from __future__ import annotations

import copy
import datetime
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from omegaconf import DictConfig, OmegaConf
from PIL import Image

from ..store import checkpoint, files
from ..recipe.config import from_container
from ..errors import UnpairedError
from ..loading import load_plugin_file
from .curves import curves
from .page import page
from .timeline import COLUMNS, IMAGES, SIDE, Inputs, Timeline, held_out_inputs, pick_steps

if TYPE_CHECKING:
    import torch

REPORT = "report.html"
SAMPLE_GRIDS = 6  # sample grids shown at most
SAMPLE_FILE = re.compile(r"step_(\d+)\.png")


@dataclass
class ReportHeader:
    """The report's header and run section."""
    run_dir: Path
    name: str
    summary: str  # step, objective, generator
    device_line: str  # the run's first line, without its name and folder
    recipe: str  # config.yaml
    written: str = field(default_factory=lambda: datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))


@dataclass
class TimelineView:
    """What the page shows of the timeline."""
    inputs: Inputs | None = None
    columns: list = field(default_factory=list)
    total: int = 0  # checkpoint files on disk
    side: int = SIDE
    error: str = ""


def check_run_dir(run_dir: str | os.PathLike) -> Path:
    """``run_dir`` as a Path, or an error naming it when it holds no run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UnpairedError(f"run directory {run_dir} does not exist" if not run_dir.exists()
                            else f"{run_dir} is a file, not a run directory")
    if not any((run_dir / name).is_file() for name in ("config.yaml", "metrics.csv", "checkpoints/latest.pt")):
        raise UnpairedError(f"{run_dir} is not a run directory: it holds no config.yaml, metrics.csv or "
                            "checkpoints/latest.pt (unpaired run writes them)")
    return run_dir


def run_recipe(run_dir: Path, state: Mapping[str, Any] | None) -> DictConfig | None:
    """The run's recipe: its latest checkpoint's, else its config.yaml's; None when neither reads."""
    try:
        if state is not None and isinstance(state.get("config"), dict):
            return from_container(state["config"])
        # a recipe file is a mapping; anything else fails in from_container, and the report goes without
        return from_container(cast(dict, OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))))
    except Exception:  # noqa: BLE001 - the report shows what it can
        return None


def rebase_data_paths(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """Relative data paths of the recipe that do not exist from the current folder, looked up
    from the folder training ran in (the one above runs/, for the default out_dir runs/NAME)."""
    bases = [Path.cwd(), run_dir.resolve().parent.parent, run_dir.resolve().parent]
    for section in ("params", "test_params"):
        node = cfg.data[section]
        for key, value in (node or {}).items():
            if isinstance(value, str) and value and not Path(value).is_absolute() and not value.startswith("~"):
                found = next((base / value for base in bases if (base / value).exists()), None)
                if found is not None:
                    node[key] = str(found)
    return cfg


def recipe_inputs(cfg: DictConfig, run_dir: Path, n: int = IMAGES) -> Inputs:
    """The timeline's held-out images, from the run's recipe (its held-out split, else its
    training images, as the run's sample grids do)."""
    from ..engine.build import build_dataset

    cfg = rebase_data_paths(copy.deepcopy(cfg), run_dir)
    held_out = cfg.data.test_params is not None
    dataset = build_dataset(cfg, test=held_out)
    return held_out_inputs(dataset, n, note=shown_note(dataset, held_out), watch=list(cfg.train.watch))


def shown_note(dataset: Any, held_out: bool) -> str:
    """What the report says of the images it shows from ``dataset`` when they are training
    images: the run has no held-out split (``held_out`` False), or the dataset says why its
    held-out split holds training images (its ``held_out_note``: a user's own folders)."""
    if not held_out:
        return "The run has no held-out split (data.test_params): these are training images."
    if getattr(dataset, "held_out_note", None):
        return f"These are training images, not held out: {dataset.held_out_note}."
    return ""


def sample_grids(run_dir: Path, count: int = SAMPLE_GRIDS) -> list[tuple[int, Image.Image]]:
    """[(step, PIL)] of up to ``count`` of the run's samples/step_*.png, evenly spaced."""
    found = {}
    folder = run_dir / "samples"
    if folder.is_dir():
        for path in folder.iterdir():
            match = SAMPLE_FILE.fullmatch(path.name)
            if match:
                found[int(match.group(1))] = path
    grids = []
    for step in pick_steps(found, count):
        try:
            with Image.open(found[step]) as im:
                grids.append((step, im.convert("RGB")))
        except OSError:
            continue
    return grids


def write_report(run_dir: str | os.PathLike, timeline: Timeline | None = None,
                 plugins: Iterable[str | os.PathLike] = (), device: str | torch.device = "cpu", columns: int = COLUMNS,
                 raw: bool = False) -> Path:
    """Write RUN_DIR/report.html (atomically) and return its path.

    ``timeline``: a :class:`Timeline` whose translations to reuse (the report plugin's);
    None: one is made from the run's recipe. ``plugins``: plugin files to load first, for a
    run whose networks or dataset come from one (``--plugins``). The recipe, the step and the
    device line come from the latest checkpoint (or, before there is one, the newest kept step).
    ``raw``: the timeline translates with the trained weights, not the averaged generator."""
    run_dir = check_run_dir(run_dir)
    for file in plugins:
        load_plugin_file(file)
    latest = run_dir / "checkpoints" / "latest.pt"
    kept = checkpoint.kept_steps(run_dir / "checkpoints")
    newest = latest if latest.is_file() else kept[max(kept)] if kept else None
    state = checkpoint.peek(newest) if newest is not None else None
    cfg = run_recipe(run_dir, state)
    view = TimelineView()
    if timeline is None and cfg is not None and state is not None:
        try:
            timeline = Timeline(recipe_inputs(cfg, run_dir), device, seed=cfg.train.seed, raw=raw)
        except UnpairedError as exc:
            view.error = f"The held-out images cannot be loaded: {exc}"
    if timeline is not None:
        view.inputs = timeline.inputs
        view.columns, view.total = timeline.columns(run_dir, columns)
    elif not view.error:
        view.error = "No checkpoint has been written yet." if state is None else "The run's recipe cannot be read."
    info = header(run_dir, cfg, state)
    figure = None
    if (run_dir / "figure.png").is_file():
        with Image.open(run_dir / "figure.png") as im:
            figure = im.convert("RGB")
    html = page(info, curves(run_dir / "metrics.csv"), view, figure, sample_grids(run_dir))
    # atomically, through files: a link at report.html is replaced, never written through
    return files.write_text(run_dir / REPORT, html)


def header(run_dir: Path, cfg: DictConfig | None, state: Mapping[str, Any] | None) -> ReportHeader:
    state = state or {}
    name = cfg.name if cfg is not None else run_dir.name
    parts = []
    if isinstance(state.get("step"), int):
        parts.append(f"step {state['step']:,}")
    if cfg is not None:
        parts.append(f"objective {cfg.objective.name}, generator {cfg.generator.name}")
    config = run_dir / "config.yaml"
    recipe = config.read_text(encoding="utf-8", errors="replace") if config.is_file() else (
        OmegaConf.to_yaml(cfg) if cfg is not None else "")
    return ReportHeader(run_dir, name, "; ".join(parts) or "no checkpoint yet",
                   str(state.get("device_line") or ""), recipe)


__all__ = ["REPORT", "Timeline", "held_out_inputs", "shown_note", "write_report"]
