"""The end-of-run figure ``OUT_DIR/figure.png``: a few held-out images translated at their own
resolution (a shorter side above 512 px is brought down to 512), the rows the objective's
``samples(a, b)`` gives (CycleGAN: real | translated | reconstructed, A->B rows then B->A rows);
tiles smaller than 256 px are enlarged for display.
The run's last line names it. When the run has no held-out images, training images are used
(the run says so). Disable with ``disable_plugins: [figure]``.
"""
import logging
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from unpaired.api import (SIZE_MULTIPLE, eager, held_out_items, hookimpl, item_image, pad_to_multiple, save_image,
                          size_multiple, spread as spread_over, to_image)

log = logging.getLogger("unpaired")
KEY = "figure"  # run.state[KEY]: the figure's path, for the progress display's last line
PAIRS = 3
MIN_SIDE, MAX_SIDE = 256, 512
CAPTION = 18


@hookimpl(tryfirst=True)  # before the progress display prints its last line
def on_train_end(run, step, interrupted) -> None:
    if interrupted or step < run.total_steps or run.held_out is None or len(run.held_out) == 0:
        return
    try:
        rows = translate_pairs(run)
        run.state[KEY] = save_figure(rows, Path(run.out_dir) / "figure.png")
    except Exception as exc:  # the run is done and saved: a figure that fails costs a warning, no more
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        log.warning("figure.png not written: %s: %s", type(exc).__name__, first)


def _image(item, domain):
    """A (1, C, H, W) tensor in [-1, 1]: the item's file at its own resolution when the item
    names it (a shorter side above MAX_SIDE brought down to it), else the item's tensor."""
    return item_image(item, domain, MAX_SIDE)


def _tile(x):
    """An output as a PIL tile, enlarged (for the eye only) to a shorter side of MIN_SIDE."""
    img = to_image(x)
    short = min(img.size)
    if short < MIN_SIDE:
        img = img.resize((round(img.width * MIN_SIDE / short), round(img.height * MIN_SIDE / short)),
                         Image.Resampling.BICUBIC)
    return img


LABELS = {2: "real | translated", 3: "real | translated | reconstructed"}
DIRECTIONS = {"a2b": "A -> B", "b2a": "B -> A"}


def caption(model, key, n_tiles):
    """A row's caption: the objective's own words for it (its optional ``sample_captions``),
    else the direction in words and what the tiles are."""
    own = (getattr(model, "sample_captions", None) or {}).get(key)
    if own:
        return own
    return f"{DIRECTIONS.get(key, key)}: {LABELS.get(n_tiles, 'real | ...')}"


def spread(n, k=PAIRS):
    """The indices of the held-out items the figure shows (unpaired.data.held_out.spread)."""
    return spread_over(n, k)


def translate_pairs(run):
    """[(caption, [PIL tiles]), ...]: each row the objective's ``samples(a, b)`` gives (for
    CycleGAN a2b: real | translated | reconstructed, then b2a), one held-out pair at a time."""
    model, device = run.objective, run.device
    nets = list(model.networks().values())
    modes = [n.training for n in nets]
    for n in nets:
        n.eval()
    rows: dict[str, list[list[Image.Image]]] = {}  # sample row -> its tiles for each held-out pair
    multiple = max(size_multiple(*nets), SIZE_MULTIPLE)
    try:
        for item in held_out_items(run.held_out, PAIRS):  # reproducible crops and partners
            a, (ha, wa) = pad_to_multiple(_image(item, "A").to(device), multiple)
            b, (hb, wb) = pad_to_multiple(_image(item, "B").to(device), multiple)
            with torch.no_grad(), eager():  # compiled networks would recompile for every new size
                out = model.samples(a, b)  # {row: (real, translated, ...)}, the one call into the objective
            for key, row in out.items():
                h, w = (ha, wa) if row[0] is a else (hb, wb)
                rows.setdefault(key, []).append([_tile(x[0, :, :h, :w]) for x in row])
    finally:
        for n, mode in zip(nets, modes):
            n.train(mode)
    return [(caption(model, key, len(tiles)), tiles) for key, group in rows.items() for tiles in group]


def save_figure(rows, path, pad=6):
    """One PNG of captioned rows; written atomically (``unpaired.save_image``)."""
    widths = [sum(t.width for t in tiles) + pad * (len(tiles) + 1) for _, tiles in rows]
    heights = [max(t.height for t in tiles) + CAPTION + pad for _, tiles in rows]
    canvas = Image.new("RGB", (max(widths), sum(heights) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    y = pad
    for (caption, tiles), height in zip(rows, heights):
        draw.text((pad, y + 2), caption, fill=(0, 0, 0))
        x = pad
        for tile in tiles:
            canvas.paste(tile.convert("RGB"), (x, y + CAPTION))
            x += tile.width + pad
        y += height
    return save_image(canvas, path)
