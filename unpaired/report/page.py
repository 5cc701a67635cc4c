"""The report as one HTML file: inline CSS, charts as inline SVG, images as data: URIs, no
script and no address outside the file, so it opens from disk in any browser, offline, and
can be mailed as it is."""
from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING

from ..console import shell_command
from ..data.tensors import to_image
from .svg import line_chart

if TYPE_CHECKING:
    from PIL import Image

    from . import ReportHeader, TimelineView
    from .curves import Curves

JPEG_QUALITY = 92  # photographs (timeline tiles, the figure): a tenth of PNG's size, artefacts below what GANs make

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d1d1f; background: #fafafa; }
main { max-width: 1400px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 24px; margin: 8px 0 4px; } h2 { font-size: 19px; margin: 32px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 16px 0 4px; }
.meta, .note { color: #555; } .note { font-size: 13px; max-width: 900px; }
code, pre { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #fff; border: 1px solid #ddd; padding: 8px 12px; overflow-x: auto; max-height: 480px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart { background: #fff; border: 1px solid #ddd; }
.chart-title { font-weight: 600; font-size: 13px; } .tick, .legend { font-size: 11px; fill: #444; }
.axis { font-size: 11px; fill: #666; } .chart-empty { font-size: 12px; fill: #888; }
.grid { stroke: #eee; } .frame { fill: none; stroke: #bbb; }
.scroll { overflow-x: auto; }
table.timeline { border-collapse: collapse; } table.timeline td, table.timeline th { padding: 4px; vertical-align: top; text-align: center; }
table.timeline th { font-size: 13px; font-weight: 600; white-space: nowrap; }
figure { margin: 0; } figcaption { font-size: 12px; color: #444; white-space: nowrap; }
img.tile { display: block; min-width: 160px; height: auto; background: #fff; border: 1px solid #ddd; }
img.grid { image-rendering: pixelated; border: 1px solid #ddd; }
table.scores { border-collapse: collapse; background: #fff; } table.scores td, table.scores th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
.best { font-weight: 700; } .error { color: #b00020; }
"""


def data_uri(image: Image.Image, fmt: str = "PNG") -> str:
    """A PIL image as a data: URI (``fmt`` PNG or JPEG)."""
    buf = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    else:
        image.save(buf, format="PNG")
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def img(image: Image.Image, alt: str, cls: str = "tile", fmt: str = "JPEG", scale: int = 1) -> str:
    """An <img> of a PIL image, its size written out (the page does not reflow as it loads)."""
    w, h = image.size
    return (f'<img class="{cls}" src="{data_uri(image, fmt)}" width="{w * scale}" height="{h * scale}" '
            f'alt="{escape(alt)}">')


def section(title: str, body: str, note: str = "") -> str:
    note = f'<p class="note">{note}</p>' if note else ""
    return f"<section><h2>{escape(title)}</h2>{note}{body}</section>"


def charts(items: Iterable[str]) -> str:
    return '<div class="charts">' + "".join(items) + "</div>"


def run_section(info: ReportHeader) -> str:
    """The run: what trained where (the run's first line) and its recipe."""
    device = escape(info.device_line) if info.device_line else "not recorded (a checkpoint of an older unpaired)"
    body = (f"<p><b>Trained on</b>: <code>{device}</code></p>"
            f"<details><summary>Recipe (<code>config.yaml</code>, as resolved; click to show)</summary>"
            f"<pre>{escape(info.recipe or 'no config.yaml in the run directory')}</pre></details>")
    return section("Run", body)


def loss_sections(c: Curves) -> list[str]:
    out = []
    if c.phases:
        out.append(section("Losses per phase", charts(
            line_chart([s], f"phase {s.name[len('loss_'):]}: {s.name}", smooth=True) for s in c.phases),
            "What each phase's optimizer minimised, averaged over each logging interval: raw (faint) and "
            "smoothed (solid, an exponential moving average)."))
    if c.terms:
        out.append(section("Objective terms and other logged values", charts(
            line_chart([s], s.name, smooth=True, width=420, height=190) for s in c.terms),
            "The objective's loss terms (weighted as in the loss) and any other value a plugin logs, raw "
            "(faint) and smoothed (solid)."))
    if c.schedule:
        names = {"lr": "learning rate", "it_per_s": "speed (steps per second)"}
        out.append(section("Schedule and speed", charts(
            line_chart([s], names.get(s.name, s.name), width=420, height=190) for s in c.schedule)))
    return out


def eval_section(c: Curves, run_dir: str | os.PathLike) -> str:
    """The evaluation metrics of the steps where an evaluation ran (eval.every, eval.at_end);
    when none ran, a line that says so and the command that scores the run."""
    if not c.evaluation:
        command = escape(shell_command("unpaired", "eval", str(run_dir)))
        return section("Evaluation", "<p>No evaluation ran during this run (<code>eval.every</code> was 0): the "
                       "curves above are training losses, not scores. Score the latest checkpoint on the held-out "
                       f"images with <code>{command}</code>, or train with <code>eval.every=N</code> to score every "
                       "N steps here.</p>")
    plots = charts(line_chart(group, title) for title, group in c.evaluation)
    names = [n for n in dict.fromkeys(k for _, row in c.eval_rows for k in row) if not n.endswith("_std")]
    best = {}
    for name in names:
        values = [(row[name], step) for step, row in c.eval_rows if name in row]
        higher = name.startswith(("psnr", "ssim"))
        best[name] = (max if higher else min)(values)[1] if values else None
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    rows = []
    for step, row in c.eval_rows:
        cells = []
        for n in names:
            v = row.get(n)
            text = "" if v is None else f"{v:.4g}" + (f" ± {row[n + '_std']:.2g}" if n + "_std" in row else "")
            cells.append(f'<td class="{"best" if best.get(n) == step else ""}">{text}</td>')
        rows.append(f"<tr><td>{step:,}</td>{''.join(cells)}</tr>")
    table = f'<table class="scores"><tr><th>step</th>{head}</tr>{"".join(rows)}</table>'
    return section("Evaluation", plots + "<h3>Per step (best in bold)</h3>" + table,
                   f"Scores of the model at the {len(c.eval_rows)} step(s) where an evaluation ran (eval.every, "
                   "eval.at_end), on the held-out images: KID and FID of the translations against the real "
                   "target domain; cycle L1 of each domain's reconstructions (unweighted, unlike the training "
                   "term); PSNR, SSIM and L1 against the truth where the data is paired. Numbers from an "
                   "extractor other than 'inception' are not comparable with published FIDs.")


# timeline: a TimelineView, not annotated as one: its inputs are None only with an error, which mypy cannot see
def timeline_section(timeline) -> str:
    """The held-out images (rows) translated at each chosen step (columns)."""
    if timeline.error:
        return section("Sample timeline", f'<p class="error">{escape(timeline.error)}</p>')
    columns = timeline.columns
    if not columns:
        return section("Sample timeline", "<p>No checkpoint has been written yet.</p>")
    head = "<th>input</th>" + "".join(f"<th>step {c.step:,}{' (latest)' if c.source.endswith('latest.pt') else ''}</th>"
                                      for c in columns)
    rows = []
    for direction, inputs in timeline.inputs.images.items():
        if not any(direction in c.images for c in columns):
            continue  # a one-sided objective translates a2b only
        arrow = "A → B" if direction == "a2b" else "B → A"
        for i, (name, x) in enumerate(inputs):
            cells = [f"<td><figure>{img(to_image(x[0]), f'{name} {direction} input')}<figcaption>{escape(name)} ({arrow})"
                     "</figcaption></figure></td>"]
            for c in columns:
                if c.error or direction not in c.images:
                    cells.append(f'<td class="error">{escape(c.error or "not translated")}</td>')
                    continue
                out = c.images[direction][i]
                cells.append(f"<td><figure>{img(out, f'{name} {direction} step {c.step}')}"
                             f"<figcaption>step {c.step:,}</figcaption></figure></td>")
            rows.append(f"<tr>{''.join(cells)}</tr>")
    shown = len(columns)
    left_out = f" {timeline.total - shown} of the {timeline.total} kept steps are left out here (every " \
               "m-th is shown, and the last)." if timeline.total > shown else ""
    which = "images" if timeline.inputs.note else "held-out images"  # the note says what they are
    note = (f"The same {which} translated by the model of each step, from the run's kept checkpoints "
            "(<code>checkpoints/step_&lt;N&gt;.pt</code>, <code>train.keep_every</code>) and "
            f"<code>checkpoints/latest.pt</code>, shorter side at most {timeline.side} px.{left_out} "
            + escape(timeline.inputs.note))
    if len(columns) == 1:
        note += (" Only the latest checkpoint is on disk: train with <code>train.keep_every=N</code> to see "
                 "the model at every N steps.")
    return section("Sample timeline", f'<div class="scroll"><table class="timeline"><tr>{head}</tr>'
                                      f'{"".join(rows)}</table></div>', note)


def figure_section(figure: Image.Image | None, note: str = "") -> str:
    """figure.png; ``note``: what its images are when they are not held out (the timeline's)."""
    if figure is None:
        return ""
    which = f"images at their own resolution. {escape(note)}" if note else "held-out images at their own resolution."
    return section("Final figure", img(figure, "figure.png", cls="figure"),
                   f"<code>figure.png</code>, written at the end of the run (real | translated | reconstructed for "
                   f"CycleGAN): {which}")


def grids_section(grids: Sequence[tuple[int, Image.Image]]) -> str:
    """The sample grids written during training (training-size crops), labelled with their step."""
    if not grids:
        return ""
    cells = "".join(f"<td><figure>{img(image, f'samples at step {step}', cls='grid', fmt='PNG', scale=2)}"
                    f"<figcaption>step {step:,}</figcaption></figure></td>" for step, image in grids)
    return section("Sample grids during training", f'<div class="scroll"><table class="timeline"><tr>{cells}'
                   "</tr></table></div>",
                   "<code>samples/step_*.png</code>: the training crops of the sample images, shown at twice their size.")


def page(info: ReportHeader, curves: Curves, timeline: TimelineView, figure: Image.Image | None,
         grids: Sequence[tuple[int, Image.Image]]) -> str:
    """The whole document."""
    title = f"{info.name}: report"
    header = (f"<h1>{escape(info.name)}</h1><p class=\"meta\"><code>{escape(str(info.run_dir))}</code> · "
              f"{escape(info.summary)} · report written {escape(info.written)}</p>")
    body = [header, run_section(info), *loss_sections(curves)]
    if curves.empty:
        body.append(section("Losses", "<p>No metrics.csv rows yet.</p>"))
    body += [eval_section(curves, info.run_dir), timeline_section(timeline),
             figure_section(figure, timeline.inputs.note if timeline.inputs else ""), grids_section(grids)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<link rel=\"icon\" href=\"data:,\"><title>{escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")
