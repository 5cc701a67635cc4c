"""``unpaired compare RUN[@STEP] ... IMAGES --out grid.png``: the same images translated by
several models, one grid: a row per image, the input then one column per model, each column
labelled with the run's name, its objective and the step of the checkpoint used.

    models, images = split_models_and_images(["runs/a", "runs/b@500", "photos/"])
    compare(models, images, Path("grid.png"))
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from PIL import Image, ImageDraw, ImageFont

from ..store import checkpoint, files
from ..data.images import load_image
from ..errors import UnpairedError
from .tiling import large_images
from .translate import Translator, expand_inputs, resize_shorter

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
PAD, HEADER, CAPTION = 8, 44, 20
RUN_AT_STEP = re.compile(r"(.+)@(\d+)")


@dataclass
class Model:
    """A model to compare: a run directory or checkpoint file, and a kept step (None: latest)."""
    path: Path
    step: int | None = None


@dataclass
class Result:
    path: Path
    rows: int
    left_out: int  # images beyond --max-images


def is_model(path: Path) -> bool:
    """A run directory (it has checkpoints, or a config.yaml: a run without one yet is named in
    the error rather than taken for an image folder) or a .pt checkpoint file."""
    if path.is_dir():
        return any((path / name).exists() for name in ("config.yaml", "checkpoints/latest.pt", "latest.pt")) \
            or bool(checkpoint.kept_steps(path / "checkpoints"))
    return path.is_file() and path.suffix == ".pt"


def parse_model(arg: str) -> Model | None:
    """``RUN``, ``RUN@STEP`` or ``CHECKPOINT.pt`` as a :class:`Model`; None for anything else."""
    path = Path(arg).expanduser()
    if path.exists():
        return Model(path) if is_model(path) else None
    match = RUN_AT_STEP.fullmatch(arg)
    if match:
        run = Path(match.group(1)).expanduser()
        if not run.is_dir():
            raise UnpairedError(f"{arg}: run directory {run} does not exist")
        return Model(run, int(match.group(2)))
    return None


def split_models_and_images(items: list[str]) -> tuple[list[Model], list[str]]:
    """([Model], [image arguments]): the leading arguments that name models, then the images."""
    models = []
    for arg in items:
        model = parse_model(arg)
        if model is None:
            break
        models.append(model)
    images = items[len(models):]
    if not models:
        raise UnpairedError(f"compare: {items[0]!r} is not a run directory, RUN@STEP or checkpoint file (.pt); "
                            "give the runs first, then the images")
    if not images:
        raise UnpairedError("compare: no images after the runs; give image files, folders or glob patterns last")
    for arg in images:
        if Path(arg).expanduser().exists() and parse_model(arg) is not None:
            raise UnpairedError(f"compare: {arg} is a run, given after the images; give the runs first")
    return models, images


def check_out(out: Path, sources: Iterable[str | os.PathLike]) -> str:
    """The grid's format; refuses an output that is one of the inputs (same file, by inode)."""
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise UnpairedError(f"--out {out}: the grid is written as .png or .jpg, not {out.suffix or 'no extension'!r}")
    if out.is_dir():
        raise UnpairedError(f"--out {out} is a folder; give a file name such as {out / 'grid.png'}")
    if out.exists():
        for src in sources:
            if os.path.samefile(out, src):
                raise UnpairedError(f"--out {out} is the input {src}; it would be overwritten. Choose another --out")
    return fmt


def column_label(model: Model, state: Mapping[str, Any], path: str | os.PathLike) -> tuple[str, str]:
    """(run name, "objective, step N") of a model's column."""
    run = model.path if model.path.is_dir() else Path(path).parent.parent if Path(path).parent.name == "checkpoints" \
        else None
    name = run.name if run is not None else Path(path).name
    if model.path.is_file():
        name += f" ({Path(path).name})"
    step = state.get("step")
    objective = state.get("objective", "?")
    return name, f"{objective}, step {step:,}" if isinstance(step, int) else objective


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1: the small bitmap font
        return ImageFont.load_default()


def compare(models: Sequence[Model], inputs: Iterable[str | os.PathLike], out: str | os.PathLike,
            direction: str = "a2b", size: int | None = 256, max_images: int = 16, device: str = "auto",
            precision: str = "auto", plugins: Sequence[str | os.PathLike] = (), raw: bool = False) -> Result:
    """Translate ``inputs`` (files, folders, globs) with each of ``models`` and write the grid
    to ``out`` (atomically). ``size``: the shorter side the images are brought to first (None:
    full resolution; large images are tiled as ``translate`` tiles them)."""
    from ..engine.restore import open_checkpoint

    if max_images < 1:
        raise UnpairedError(f"--max-images: {max_images} must be at least 1")
    out = Path(out)
    jobs = list(dict.fromkeys(os.path.realpath(src) for src, _ in expand_inputs(inputs)))
    fmt = check_out(out, [*jobs, *(m.path for m in models if m.path.is_file())])
    shown = jobs[:max_images]
    with large_images():
        images = [load_image(path) for path in shown]
    columns = [("input", ""), *([None] * len(models))]
    tiles = [[resize_shorter(img, size) for img in images]]
    for i, model in enumerate(models):
        state, path, _ = open_checkpoint(model.path, plugins=plugins, step=model.step, raw=raw)
        translator = Translator.from_checkpoint(state, direction=direction, device=device, precision=precision,
                                                size=size, source=path)
        tiles.append(translator.translate_batch(images))
        columns[i + 1] = column_label(model, state, path)
        del translator, state
    # every column's label is set by now
    grid = draw_grid(cast("list[tuple[str, str]]", columns), tiles, [Path(p).name for p in shown])
    files.save_image(grid, out, format=fmt)  # atomically, never through a link at its name or its temporary's
    return Result(out, len(shown), len(jobs) - len(shown))


def draw_grid(columns: Sequence[tuple[str, str]], tiles: Sequence[Sequence[Image.Image]],
              names: Sequence[str]) -> Image.Image:
    """One image: a header of two lines per column, then a row per image (its name under the
    input). ``tiles[c][r]``: column c's image of row r."""
    title, small = font(15), font(12)
    widths = [max(t.width for t in column) for column in tiles]
    for c, (line1, line2) in enumerate(columns):  # a label wider than its images widens the column
        widths[c] = max(widths[c], int(title.getlength(line1)), int(small.getlength(line2)))
    heights = [max(column[r].height for column in tiles) for r in range(len(names))]
    canvas = Image.new("RGB", (sum(widths) + PAD * (len(widths) + 1),
                               HEADER + sum(h + CAPTION for h in heights) + PAD * (len(heights) + 1)), "white")
    draw = ImageDraw.Draw(canvas)
    x = PAD
    for (line1, line2), width in zip(columns, widths):
        draw.text((x, PAD), line1, fill="black", font=title)
        draw.text((x, PAD + 20), line2, fill=(80, 80, 80), font=small)
        x += width + PAD
    y = HEADER + PAD
    for r, (name, height) in enumerate(zip(names, heights)):
        x = PAD
        for column, width in zip(tiles, widths):
            canvas.paste(column[r].convert("RGB"), (x, y))
            x += width + PAD
        draw.text((PAD, y + height + 3), name, fill=(80, 80, 80), font=small)
        y += height + CAPTION + PAD
    return canvas
