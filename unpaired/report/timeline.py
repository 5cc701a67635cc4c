"""The report's sample timeline: the same held-out images translated by the model of each
kept step (checkpoints/step_<N>.pt, ``train.keep_every``) and of checkpoints/latest.pt.

Where the images come from, and why: they are translated from the checkpoints on disk when
the report is built, not recorded during training. The checkpoints are the one record of
what the model was at a step — ``unpaired translate --step N`` uses the same file — so the
timeline cannot disagree with them, and a resumed run needs no bookkeeping beyond the
trainer's: at its start it removes kept steps past the checkpoint it resumes from (a killed
run wrote them; they are trained again), so what is on disk is the run's one history and the
report built from it is right however many times the run stopped. During training the
report plugin translates with the live model at each checkpoint (it *is* that step's model)
and keeps those images in memory, so a refresh loads only the checkpoints of earlier
sessions, once. The price: a run without ``train.keep_every`` shows its latest step only.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..store import checkpoint, rng
from ..data.held_out import eager, held_out_items, item_image, item_name, watch_images
from ..engine.objective import translator_of
from ..data.tensors import to_image
from ..errors import UnpairedError

if TYPE_CHECKING:
    from PIL import Image

IMAGES = 3  # held-out images per direction (the end-of-run figure shows as many)
SIDE = 256  # the shorter side of the timeline's images, in pixels: enough to judge, small to embed
COLUMNS = 8  # steps shown at most (evenly spaced, the first and the last always)
DOMAINS = {"a2b": "A", "b2a": "B"}


@dataclass
class Inputs:
    """The held-out images of the timeline: {direction: [(name, (1, C, H, W) tensor)]}."""
    images: dict
    note: str = ""  # e.g. that they are training images, the run having no held-out split


@dataclass
class Column:
    step: int
    source: str  # the checkpoint file it was translated from
    images: dict = field(default_factory=dict)  # {direction: [PIL]}
    error: str = ""  # why the checkpoint could not be used


def held_out_inputs(dataset: Any, n: int = IMAGES, side: int = SIDE, note: str = "",
                    watch: Sequence[str | os.PathLike] = ()) -> Inputs:
    """The first ``n`` held-out items' A images (for a2b) and B images (for b2a), from their
    files, shorter side brought down to ``side``; then the user's ``watch`` images (train.watch),
    translated A -> B."""
    items = held_out_items(dataset, n)
    images = {d: [(item_name(item, domain, i), item_image(item, domain, side)) for i, item in enumerate(items)]
              for d, domain in DOMAINS.items()}
    if watch:
        channels = images["a2b"][0][1].shape[1] if images["a2b"] else 3
        images["a2b"] += [(f"{name} (watched)", x) for name, x in watch_images(watch, channels, side)]
    return Inputs(images, note)


def translate_inputs(model: Any, inputs: Inputs, device: torch.device, seed: int = 0) -> dict[str, list[Image.Image]]:
    """{direction: [PIL]} of each direction ``model`` translates (an objective, or a
    checkpoint's Translators: ``translators`` and ``translator(d)``), in fp32, eval mode. A
    stochastic translator reads its noise from the field of ``seed`` (the recipe's
    ``train.seed``), as ``unpaired translate`` does by default: the same images, and torch's
    random state untouched (a run's report never moves its training's draws)."""
    from ..inference.translate import Translator

    out = {}
    for direction in model.translators:
        g = translator_of(model, direction)
        was_training = g.training
        try:
            images = [x for _, x in inputs.images.get(direction, ())]
            if images:  # translate's own padding, noise and crop (out_channels is not read here)
                channels = images[0].shape[1]
                t = Translator(g, channels, channels, device=device, precision="fp32", seed=seed)
                with eager(), torch.autocast(device.type, enabled=False):
                    out[direction] = [to_image(t.translate_tensor(x)[0]) for x in images]
            else:
                out[direction] = []
        finally:
            g.train(was_training)
    return out


def pick_steps(steps: Iterable[int], count: int = COLUMNS) -> list[int]:
    """At most ``count`` of ``steps`` (sorted): every m-th from the first, and the last. The
    choice stays the same as steps are added until m grows, so a run's refreshes reuse it."""
    steps = sorted(steps)
    if len(steps) <= count:
        return steps
    m = math.ceil((len(steps) - 1) / (count - 1))
    chosen = steps[::m]
    return chosen if chosen[-1] == steps[-1] else chosen + [steps[-1]]


def checkpoint_files(run_dir: str | os.PathLike) -> dict[int, Path]:
    """{step: file} of a run's kept steps and its latest.pt (when latest.pt's step is not kept)."""
    folder = Path(run_dir) / "checkpoints"
    files = dict(checkpoint.kept_steps(folder))
    latest = folder / "latest.pt"
    step = checkpoint.peek_step(latest) if latest.is_file() else None
    if step is not None and step not in files:
        files[step] = latest
    return dict(sorted(files.items()))


class Timeline:
    """The timeline's translations, kept between refreshes of one process: {step: images}."""

    def __init__(self, inputs: Inputs, device: str | torch.device, seed: int = 0, raw: bool = False) -> None:
        self.inputs = inputs
        self.raw = raw  # the checkpoints' trained weights, not their averaged generator (train.ema)
        self.device = torch.device(device)
        self.seed = int(seed)  # a stochastic translator's noise (the recipe's train.seed)
        self.translated: dict = {}

    def record(self, step: int, model: Any) -> None:
        """Translate with ``model`` as it is at ``step`` (the live model at a checkpoint)."""
        if step not in self.translated:
            self.translated[step] = translate_inputs(model, self.inputs, self.device, self.seed)

    def columns(self, run_dir: str | os.PathLike, count: int = COLUMNS,
                plugins: Sequence[str | os.PathLike] = ()) -> tuple[list[Column], int]:
        """The timeline's :class:`Column` s: the chosen steps of the run's checkpoint files,
        translated (or taken from memory). A checkpoint that cannot be used is a column with
        its error; translations of steps no longer chosen are dropped from memory."""
        from ..engine.restore import load_translators

        files = checkpoint_files(run_dir)
        chosen = pick_steps(files, count)
        out = []
        for step in chosen:
            column = Column(step, str(files[step]))
            if step not in self.translated:
                try:  # building the networks draws their initial weights: never from the caller's state
                    with rng.seeded(self.seed):
                        model, _ = load_translators(files[step], plugins=plugins, raw=self.raw)
                        self.translated[step] = translate_inputs(model.to(self.device), self.inputs, self.device,
                                                                 self.seed)
                except UnpairedError as exc:
                    column.error = str(exc)
            column.images = self.translated.get(step, {})
            out.append(column)
        self.translated = {s: v for s, v in self.translated.items() if s in chosen}
        return out, len(files)
