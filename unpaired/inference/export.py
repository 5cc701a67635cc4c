"""``unpaired export``: a trained generator as an ONNX file or a torch.export (.pt2) program.

Both formats take any batch size, height and width (height and width multiples of the
generator's size multiple, 4 by the plugin contract). Each export is verified before it is
reported: the exported model runs on three input sizes (one non-square, none the training crop)
and is compared with the PyTorch generator; the tolerance and the largest difference are returned.

A stochastic translator (a sampler that draws noise, unpaired.engine.noise) is exported whole — its
steps unrolled into the graph — with each of its noise inputs as a further input of the graph,
named as the translator declares them (UNSB: ``z`` and ``eps``), standard normal, with the
batch, height and width dynamic like the image's; the verification feeds both the same seeded
noise. (Noise generated inside the graph from a seed input is not portable: ONNX's random
operators take their seed as a fixed attribute.)

The generator comes from :class:`unpaired.inference.translate.Translator` (the checkpoint's own recipe and
plugins); this module never rebuilds networks itself.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import torch
from torch import nn

from ..store import files
from ..errors import UnpairedError, one_of
from ..engine.noise import BATCH, HEIGHT, WIDTH, draw, noise_inputs

FORMATS = ("onnx", "pt2")
OPSET = 18
TOLERANCE = 1e-3  # max |exported - pytorch| on outputs in [-1, 1], fp32
EXPORT_EXTRA = 'pip install "unpaired[export]"'


@dataclass
class Verification:
    sizes: list  # [(H, W)] checked
    max_error: float
    tolerance: float = TOLERANCE
    errors: list = field(default_factory=list)  # per size

    @property
    def ok(self) -> bool:
        return self.max_error <= self.tolerance


def require(module: str, extra: str = "export") -> ModuleType:
    """Import an optional dependency or raise a one-line message with the install command."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UnpairedError(f"{module} is not installed: pip install \"unpaired[{extra}]\"") from None


def check_sizes(multiple: int, crop: int | None = None) -> list[tuple[int, int]]:
    """Three (H, W) to verify on: non-square ones, none equal to the training crop."""
    m = multiple
    sizes = [(12 * m, 20 * m), (17 * m, 9 * m), (24 * m, 24 * m)]
    return [(h + m, w + m) if crop and (h, w) == (crop, crop) else (h, w) for h, w in sizes]


def default_out(checkpoint_arg: str | os.PathLike, direction: str, fmt: str, step: int | None = None) -> Path:
    """generator_<direction>.<fmt> (generator_<direction>_step<N>.<fmt> for a kept step)
    in the run directory, or beside a checkpoint file (a checkpoint already loaded: the current
    folder)."""
    if isinstance(checkpoint_arg, dict):
        return Path(f"generator_{direction}{'' if step is None else f'_step{step}'}.{fmt}")
    p = Path(checkpoint_arg)
    base = p if p.is_dir() else p.parent
    return base / f"generator_{direction}{'' if step is None else f'_step{step}'}.{fmt}"


def _operator_of(exc: BaseException) -> str | None:
    """The operator an exporter failure names, if any."""
    text = str(exc)
    for pattern in (r"(aten::[\w.]+)", r"(aten\.[\w.]+)", r"operator[: ]+'?([\w:.]+)", r"'([\w]+::[\w.]+)'"):
        m = re.search(pattern, text)
        if m:
            return m.group(1)
    return None


def _refuse_export(fmt: str, name: str, exc: BaseException) -> NoReturn:
    op = _operator_of(exc)
    hint = "(docs/plugins.md, 'Exportable generators')"
    if op:
        raise UnpairedError(f"generator {name!r} cannot be exported to {fmt}: operator {op} is not supported "
                            f"{hint}") from None
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    raise UnpairedError(f"generator {name!r} cannot be exported to {fmt} ({type(exc).__name__}: {first}); "
                        f"data-dependent Python in forward() is the usual cause {hint}") from None


def _dims(multiple: int, noise: Mapping[str, tuple[int | str, ...]] | None = None) -> dict[str, object]:
    """The dynamic shapes of the image input and of each noise input (in their order)."""
    from torch.export import Dim

    batch = Dim("batch", min=1, max=1024)
    h = Dim("h", min=1, max=4096)
    w = Dim("w", min=1, max=4096)
    axes = {BATCH: batch, HEIGHT: multiple * h, WIDTH: multiple * w}
    specs = [{0: batch, 2: multiple * h, 3: multiple * w}]
    for template in (noise or {}).values():
        specs.append({i: axes[s] for i, s in enumerate(template) if s in axes})
    return {"x": specs[0]} if len(specs) == 1 else {"x": specs[0], "noise": tuple(specs[1:])}


class _Wrapped(torch.nn.Module):
    """The generator with named inputs, so dynamic shapes can refer to them: the image, then a
    stochastic translator's noise inputs in their declared order."""

    def __init__(self, g: nn.Module) -> None:
        super().__init__()
        self.g = g
        self.names = list(noise_inputs(g))

    def forward(self, x: torch.Tensor, *noise: torch.Tensor) -> torch.Tensor:
        return self.g(x, **dict(zip(self.names, noise)))


def _example(generator: nn.Module, in_channels: int, multiple: int) -> tuple[torch.Tensor, ...]:
    """Example inputs: a batch of 2 images of 16 multiples a side, and their noise."""
    x = torch.randn(2, in_channels, 16 * multiple, 16 * multiple)
    return (x, *draw(generator, x, torch.Generator().manual_seed(0)).values())


def export_onnx(generator: nn.Module, in_channels: int, out: str | os.PathLike, metadata: Mapping[str, object],
                multiple: int = 4, name: str = "generator") -> Path:
    require("onnx"), require("onnxscript")
    model = _Wrapped(generator).eval()
    example = _example(generator, in_channels, multiple)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, example, dynamo=True,
                                        dynamic_shapes=_dims(multiple, noise_inputs(generator)),
                                        input_names=["input", *model.names], output_names=["output"],
                                        opset_version=OPSET, verbose=False)
    except Exception as exc:  # the exporter raises many kinds
        _refuse_export("onnx", name, exc)
    assert program is not None  # None only from the TorchScript exporter (dynamo=False)
    proto = program.model_proto
    for key, value in {**metadata, "opset": str(OPSET)}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    if proto.ByteSize() >= 2**31:
        raise UnpairedError(f"generator {name!r} is over 2 GB, more than one ONNX file holds; "
                            "export it with --format pt2")
    # serialised in memory, written by Python (atomically): a full disk is an error naming the file
    return files.write_bytes(out, proto.SerializeToString())


def export_pt2(generator: nn.Module, in_channels: int, out: str | os.PathLike, metadata: Mapping[str, object],
               multiple: int = 4, name: str = "generator") -> Path:
    model = _Wrapped(generator).eval()
    example = _example(generator, in_channels, multiple)
    try:
        program = torch.export.export(model, example, dynamic_shapes=_dims(multiple, noise_inputs(generator)))
    except Exception as exc:
        _refuse_export("pt2", name, exc)
    # into memory first: torch's zip writer aborts the process when the disk is full (exit 134);
    # Python's write of the bytes raises an error that names the file
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={"unpaired.json": json.dumps(metadata)})
    return files.write_bytes(out, buffer.getvalue())


def run_exported(path: str | os.PathLike, fmt: str, x: torch.Tensor,
                 noise: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The exported model at ``path`` applied to (N, C, H, W) float32 ``x`` -> tensor; ``noise``:
    a stochastic translator's noise inputs by name."""
    noise = noise or {}
    if fmt == "onnx":
        ort = require("onnxruntime")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x.numpy(), **{k: v.contiguous().numpy() for k, v in noise.items()}}
        return torch.from_numpy(session.run(None, feed)[0])
    program = torch.export.load(str(path))
    with torch.no_grad():
        return program.module()(x, *noise.values())


def verify(generator: nn.Module, path: str | os.PathLike, fmt: str, in_channels: int, multiple: int = 4,
           crop: int | None = None, seed: int = 0) -> Verification:
    """Run the export on three sizes (batch 2 for one) and compare with ``generator`` (a
    stochastic one: both with the same seeded noise)."""
    g = torch.Generator().manual_seed(seed)
    sizes = check_sizes(multiple, crop)
    errors = []
    for i, (h, w) in enumerate(sizes):
        x = torch.rand(2 if i == 0 else 1, in_channels, h, w, generator=g) * 2 - 1
        noise = draw(generator, x, g)
        with torch.no_grad():
            ref = generator(x, **noise)
        got = run_exported(path, fmt, x, noise)
        if got.shape != ref.shape:
            raise UnpairedError(f"{path}: the exported model gives shape {tuple(got.shape)} for input "
                                f"{tuple(x.shape)}, the generator {tuple(ref.shape)}")
        errors.append(float((got.float() - ref.float()).abs().max()))
    return Verification(sizes, max(errors), errors=errors)


def export(checkpoint_arg: str | os.PathLike, direction: str = "a2b", fmt: str = "onnx",
           out: str | os.PathLike | None = None, plugins: Iterable[str | os.PathLike] = (),
           step: int | None = None, raw: bool = False) -> tuple[Path, Verification]:
    """Export a checkpoint's ``direction`` generator (``step``: a run's kept checkpoint of that
    step; the averaged generator where it holds one, the trained weights with ``raw``); returns
    (path, Verification). Raises UnpairedError when the export fails or does not match."""
    from omegaconf import OmegaConf

    from ..engine.restore import open_checkpoint
    from .translate import Translator

    one_of("--format", fmt, FORMATS)
    if fmt == "onnx":
        require("onnx"), require("onnxscript"), require("onnxruntime")
    state, path, cfg = open_checkpoint(checkpoint_arg, plugins=plugins, step=step, raw=raw)  # files: explicit only
    t = Translator.from_checkpoint(state, direction=direction, device="cpu", precision="fp32", source=path)
    out = Path(out) if out else default_out(checkpoint_arg, direction, fmt, step)
    if out.is_dir():
        out = out / f"generator_{direction}.{fmt}"
    if out.exists() and not out.is_file():
        raise UnpairedError(f"--out {out}: not a regular file (a device or a pipe); give a file name")
    files.check_folder_path(out.parent, "--out")
    if not isinstance(checkpoint_arg, dict):
        files.Protected([path]).check(out, "--out", "give another file name")
    crop = OmegaConf.select(cfg, "data.params.crop_size")
    metadata = {
        "producer": "unpaired", "direction": direction, "in_channels": t.in_channels,
        "out_channels": t.out_channels, "size_multiple": t.multiple, "value_range": "[-1, 1]",
        "layout": "NCHW float32", "step": state.get("step"), "generator": cfg.generator.name,
        "recipe": json.dumps(OmegaConf.to_container(cfg, resolve=True)),
    }
    noise = noise_inputs(t.generator)
    if noise:  # a stochastic translator: its noise inputs, standard normal, by name and shape
        metadata["noise_inputs"] = json.dumps({k: list(v) for k, v in noise.items()})
    writer = export_onnx if fmt == "onnx" else export_pt2
    files.remove_stale_temps_of([out])
    with contextlib.suppress(OSError):
        out.with_name(out.name + ".partial").unlink(missing_ok=True)  # what earlier versions left behind
    with files.atomic_path(out) as tmp:  # renamed to ``out`` only once verified
        writer(t.generator, t.in_channels, tmp, metadata, t.multiple, name=cfg.generator.name)
        result = verify(t.generator, tmp, fmt, t.in_channels, t.multiple, crop)
        if not result.ok:
            raise UnpairedError(f"export of {checkpoint_arg} ({direction}) to {fmt} does not match the generator: "
                                f"max error {result.max_error:.2e} > tolerance {result.tolerance:.0e}")
    return out, result
