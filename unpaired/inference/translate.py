"""Inference: a trained generator applied to image files or PIL images.

    from unpaired import Translator
    t = Translator.from_checkpoint("runs/forest_abstract", direction="a2b")
    painting = t(Image.open("forest.jpg"))              # PIL in, PIL out, same size
    outs = t.translate_batch([img1, img2, img3])         # same-size images run as one batch

The generator is rebuilt from the checkpoint's own recipe and plugin names; nothing from the
current recipe is used. Images of any size work: by default each is padded (reflect) up to the
generator's size multiple (4, the plugin contract's; a generator may declare another with a
``size_multiple`` attribute), translated and cropped back, so the output has the input's size.
With ``size=N`` the shorter side is first resized to N pixels.

A stochastic translator (one that draws noise, e.g. UNSB's sampler: unpaired.engine.noise) gets its
noise from a field seeded by ``seed`` (default: the checkpoint's ``train.seed``): the same seed
gives the same output for an image whatever the batch, the order or the tiling; another seed
another sample.

:func:`translate_files` is the ``unpaired translate`` command's engine: input files, folders
and globs -> PNG files named after the inputs, never over an input.
"""
from __future__ import annotations

import glob as globlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from PIL import Image
from torch import nn

from ..store import files
from ..runtime.devices import autocast, autocast_dtype, pick_device
from ..errors import UnpairedError, number, one_of
from ..engine.noise import NoiseField, is_stochastic
from ..data.images import IMAGE_EXTENSIONS, find_images, is_image_file, load_image
from ..data.tensors import MIN_SIDE, pad_to_multiple, size_multiple, to_image, to_tensor
from ..engine.restore import DIRECTIONS, load_translators
from ..engine.restore import GeneratorPair, checkpoint_recipe, load_generators, require_plugin  # noqa: F401  (before 0.2)



# --------------------------------------------------------------------------- images
def resize_shorter(img: Image.Image, size: int | None) -> Image.Image:
    if not size:
        return img
    w, h = img.size
    s = size / min(w, h)
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BICUBIC)


# --------------------------------------------------------------------------- the Python API
class Translator:
    """One generator ready for inference: ``translator(pil) -> pil``.

    ``size``: resize the shorter side to this many pixels first (None: full resolution).
    ``batch_size``: how many same-size images run at once (None: 8 on a GPU, 1 on the CPU,
    where larger batches measured slower: bench/translate.py).
    ``tile``: translate in overlapping tiles of this many pixels (unpaired/inference/tiling.py); None: only
    images over 2048 x 2048 pixels, in 1024-px tiles; 0: never.
    ``seed``: the noise of a stochastic translator (unpaired.engine.noise); ignored by a deterministic one.
    """

    step: int | None  # the checkpoint's step: set by from_checkpoint only (declared, no default)
    weights: str  # "averaged" | "trained": set by from_checkpoint only

    def __init__(self, generator: nn.Module, in_channels: int, out_channels: int, device: str | torch.device = "auto",
                 precision: str = "auto", size: int | None = None, batch_size: int | None = None,
                 direction: str = "a2b", tile: int | None = None, seed: int = 0) -> None:
        if size is not None and size < 1:
            raise UnpairedError(f"--size: {size!r} must be a positive number of pixels")
        self.device = device if isinstance(device, torch.device) else pick_device(device, "--device")
        if batch_size is None:
            batch_size = 8 if self.device.type == "cuda" else 1
        if batch_size < 1:
            raise UnpairedError(f"--batch-size: {batch_size!r} must be at least 1")
        if precision == "fp16":
            raise UnpairedError("--precision: fp16 is for training; translate with auto, fp32 or bf16")
        self.dtype = autocast_dtype(precision, self.device, "--precision")
        self.generator = generator.to(self.device).eval()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.multiple = size_multiple(generator)
        self.size, self.batch_size, self.direction = size, batch_size, direction
        self.tile = tile  # None: tile only images over the budget (unpaired/inference/tiling.py); 0: never
        number("--seed", seed, 0, 2**32 - 1, integer=True)  # as train.seed: every seed its own noise
        self.seed = seed
        self.noise = NoiseField(generator, seed) if is_stochastic(generator) else None

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | dict, direction: str = "a2b",
                        device: str | torch.device = "auto", precision: str = "auto", size: int | None = None,
                        batch_size: int | None = None, plugins: Iterable[str | os.PathLike] = (),
                        tile: int | None = None, source: str | os.PathLike | None = None, key: str = "direction",
                        step: int | None = None, seed: int | None = None, raw: bool = False) -> Translator:
        """The generator of ``direction`` (a2b | b2a) from a checkpoint file or a run directory
        (its checkpoints/latest.pt; with ``step=N`` the checkpoint ``train.keep_every`` kept of
        step N, checkpoints/step_<N>.pt). ``plugins``: local plugin files to load first (they
        run Python: only files you trust); the checkpoint itself never loads any. ``path`` may
        also be a checkpoint already loaded (``restore.open_checkpoint``), ``source`` its path.
        ``key``: what errors call the direction (``--direction`` from the command line).
        ``seed``: the noise of a stochastic translator (None: the recipe's ``train.seed``).
        ``raw``: the trained weights, not the averaged generator's (``train.ema``)."""
        one_of(key, direction, DIRECTIONS)
        modules, state = load_translators(path, directions=(direction,), path=source, plugins=plugins, key=key,
                                          step=step, raw=raw)
        record = state["translators"][direction]
        cin, cout = record["in_channels"], record["out_channels"]
        if seed is None:
            seed = int(checkpoint_recipe(state, source or path).train.seed)
        t = cls(modules[direction], cin, cout, device=device, precision=precision, size=size, batch_size=batch_size,
                direction=direction, tile=tile, seed=seed)
        t.step = state.get("step")
        t.weights = state.get("weights", "trained")  # "averaged": the checkpoint's averaged generator
        return t

    def describe(self) -> str:
        prec = "bf16" if self.dtype == torch.bfloat16 else "fp32"
        seed = f", seed {self.seed}" if self.noise is not None else ""
        averaged = ", averaged generator" if getattr(self, "weights", None) == "averaged" else ""
        return f"{self.direction} on {self.device} {prec}{seed}{averaged}"

    @torch.no_grad()
    def translate_tensor(self, x: torch.Tensor, origin: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1], any H, W -> the generator's output of the same H, W (float, CPU).
        ``origin``: where ``x``'s pixel (0, 0) lies in the image (a tile's corner): a stochastic
        translator reads its noise there in the seeded field."""
        x = x.to(self.device, torch.float32)
        padded, (h, w) = pad_to_multiple(x, self.multiple, MIN_SIDE)  # 1x1 and 3x300 images too
        noise = {}
        if self.noise is not None:
            (top, left), (height, width) = origin, padded.shape[-2:]
            noise = self.noise.region(padded.shape[0], top, left, height, width, device=self.device)
        with autocast(self.device, self.dtype):
            y = self.generator(padded, **noise)
        return y[..., :h, :w].float().cpu()

    def prepare(self, img: Image.Image) -> torch.Tensor:
        return to_tensor(resize_shorter(img, self.size), self.in_channels)

    def tiled(self, img: Image.Image) -> Image.Image | None:
        """The translation of ``img`` in tiles when it should be tiled (see unpaired/inference/tiling.py), else None."""
        from .tiling import should_tile, translate_tiled

        img = resize_shorter(img, self.size)
        tile = should_tile(img.width, img.height, self.tile, self.multiple)
        return translate_tiled(self, img, tile) if tile else None

    def __call__(self, img: Image.Image) -> Image.Image:
        return self.translate_batch([img])[0]

    def translate_batch(self, images: Sequence[Image.Image]) -> list[Image.Image]:
        """PIL images -> translated PIL images, in order; images of one size share batches."""
        out = [self.tiled(img) for img in images]
        whole = [i for i, o in enumerate(out) if o is None]
        tensors = {i: self.prepare(images[i]) for i in whole}
        for group in batches_by_size([tensors[i] for i in whole], self.batch_size):
            indices = [whole[k] for k in group]
            ys = self.translate_tensor(torch.stack([tensors[i] for i in indices]))
            for i, y in zip(indices, ys):
                out[i] = to_image(y)
        return cast("list[Image.Image]", out)  # every None (not tiled) was translated above


def batches_by_size(tensors: Iterable[torch.Tensor], batch_size: int) -> Iterator[list[int]]:
    """Index lists of at most ``batch_size`` tensors that share one shape, in input order."""
    groups = defaultdict(list)
    for i, t in enumerate(tensors):
        groups[tuple(t.shape)].append(i)
    for indices in groups.values():
        for start in range(0, len(indices), batch_size):
            yield indices[start:start + batch_size]


# --------------------------------------------------------------------------- files
@dataclass
class Job:
    source: Path  # the input file
    target: Path  # the PNG to write


GLOB_CHARS = set("*?[")


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """Input arguments -> [(file, name relative to the output folder)], in order. A file keeps
    its name (``photo.jpg`` -> ``photo.png``); a folder's images keep their path below it; a
    glob pattern's matches are treated as files or folders."""
    found = []
    for arg in inputs:
        p = Path(arg).expanduser()
        if p.exists():
            matches = [p]
        elif GLOB_CHARS & set(str(arg)):
            matches = [Path(m) for m in sorted(globlib.glob(os.path.expanduser(str(arg)), recursive=True))]
            matches = [m for m in matches if m.is_dir() or is_image_file(m)]
            if not matches:
                raise UnpairedError(f"input {arg}: the pattern matches no image file or folder")
        else:
            raise UnpairedError(f"input {arg} does not exist (give image files, folders or glob patterns)")
        for m in matches:
            if m.is_dir():
                files = find_images(m)
                if not files:
                    kinds = ", ".join(sorted(IMAGE_EXTENSIONS))
                    raise UnpairedError(f"input folder {m} holds no image files ({kinds})")
                found += [(f, f.relative_to(m).with_suffix(".png")) for f in files]
            elif not m.is_file():
                raise UnpairedError(f"input {m} is not a regular file (a pipe or device is never read)")
            elif not is_image_file(m):
                kinds = ", ".join(sorted(IMAGE_EXTENSIONS))
                raise UnpairedError(f"input {m} is not an image file (extensions: {kinds})")
            else:
                found.append((m, Path(m.name).with_suffix(".png")))
    return found


def plan_jobs(inputs, out_dir: str | os.PathLike) -> list[Job]:
    """The (input, output) pairs; refuses outputs that would overwrite an input (compared by
    identity: hard and symbolic links to an input are that input) or collide."""
    out_dir = Path(out_dir)
    pairs = expand_inputs(inputs)
    files.check_folder_path(out_dir, "--out")
    inputs = files.Protected(src for src, _ in pairs)
    jobs: list[Job] = []
    claimed: dict[str, Path] = {}  # real path of a target -> the input written there
    for src, rel in pairs:
        target = out_dir / rel
        inputs.check(target, f"--out {out_dir}", "choose another output folder with --out")
        real = os.path.realpath(target)
        if real in claimed:
            if os.path.realpath(claimed[real]) == os.path.realpath(src):
                continue  # the same file given twice
            raise UnpairedError(f"inputs {claimed[real]} and {src} would both be written to {target}; "
                                "translate them in separate calls with different --out folders")
        claimed[real] = src
        jobs.append(Job(src, target))
    return jobs


def check_grid(jobs: Iterable[Job], grid: Path) -> Path:
    """Refuse a ``--grid`` file that is an input (by identity) or one of the outputs."""
    files.Protected(j.source for j in jobs).check(grid, "--grid", "use another --out")
    if any(os.path.realpath(j.target) == os.path.realpath(grid) for j in jobs):
        raise UnpairedError(f"--grid: an output is already named {grid}; use another --out")
    return grid


def default_out_dir(checkpoint_or_run: str | os.PathLike, direction: str, step: int | None = None) -> Path:
    """A run directory's translated_<direction>/ (translated_<direction>_step<N>/ for a kept
    step); for a checkpoint file, ./translated_<direction>/."""
    p = Path(checkpoint_or_run)
    return (p if p.is_dir() else Path.cwd()) / f"translated_{direction}{'' if step is None else f'_step{step}'}"


def translate_files(translator: Translator, jobs: Iterable[Job], progress: Callable[[int], object] | None = None,
                    grid: Path | None = None, grid_rows: int = 16) -> list[Path]:
    """Translate each job's file and write its PNG; ``progress(n_done)`` after each image.
    Images of one size are batched (``translator.batch_size``); at most 4 batches' worth
    wait at a time. ``grid``: a path for an input | output overview of the first
    ``grid_rows`` images. Every file is written atomically (a temporary name, then renamed);
    temporaries that killed runs left beside these outputs are removed first. Returns the
    written paths."""
    written: list[Path] = []
    shown: list[tuple[Image.Image, Image.Image]] = []  # (input, output) pairs of the grid
    files.remove_stale_temps_of([j.target for j in jobs] + ([grid] if grid is not None else []))
    groups: defaultdict[tuple[int, ...], list[tuple[Job, torch.Tensor]]] = defaultdict(list)  # shape -> [(job, x)]

    def flush(shape: tuple[int, ...]) -> None:
        items = groups.pop(shape)
        ys = translator.translate_tensor(torch.stack([x for _, x in items]))
        for (job, x), y in zip(items, ys):
            img = to_image(y)
            files.save_image(img, job.target)
            written.append(job.target)
            if grid is not None and len(shown) < grid_rows:
                shown.append((to_image(x), img))
            if progress:
                progress(len(written))

    for job in jobs:
        from .tiling import large_images

        with large_images():
            img = load_image(job.source, channels=translator.in_channels)
        tiled = translator.tiled(img)
        if tiled is not None:  # large: translated in tiles, written at once
            files.save_image(tiled, job.target)
            written.append(job.target)
            if progress:
                progress(len(written))
            continue
        x = translator.prepare(img)
        groups[tuple(x.shape)].append((job, x))
        if len(groups[tuple(x.shape)]) >= translator.batch_size:
            flush(tuple(x.shape))
        elif sum(map(len, groups.values())) >= 4 * translator.batch_size:
            flush(max(groups, key=lambda k: len(groups[k])))
    for shape in list(groups):
        flush(shape)
    if grid is not None and shown:
        save_grid(shown, grid)
    return written


def save_grid(pairs: Iterable[Iterable[Image.Image]], path: str | os.PathLike, height: int = 128,
              pad: int = 4) -> Path:
    """One PNG: a row per image, input | output, each scaled to ``height`` pixels."""
    tiles = []
    for row in pairs:
        tiles.append([im.convert("RGB").resize((max(1, round(im.width * height / im.height)), height),
                                               Image.Resampling.BICUBIC)
                      for im in row])
    width = max(sum(t.width for t in row) + pad * (len(row) + 1) for row in tiles)
    canvas = Image.new("RGB", (width, len(tiles) * (height + pad) + pad), (255, 255, 255))
    y = pad
    for row in tiles:
        x = pad
        for t in row:
            canvas.paste(t, (x, y))
            x += t.width + pad
        y += height + pad
    return files.save_image(canvas, path)
