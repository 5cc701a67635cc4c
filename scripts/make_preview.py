#!/usr/bin/env python3
"""Make what the repository ships of the forest -> abstract preview, from one run of today's
recipe (``unpaired run recipes/forest_abstract.yaml --quick``):

* ``models/forest_abstract_preview.pt``: the two generators of the run's last kept step (no
  discriminators, optimizers or pools), their weights stored in float16 (half the size; they
  are cast back to float32 when loaded), with a ``made_by`` record of the recipe, the steps,
  the command, the machine and the date. ``unpaired translate models/forest_abstract_preview.pt
  PHOTO`` and ``unpaired serve models/forest_abstract_preview.pt`` work on a fresh clone.
* ``docs/preview.jpg``: the run's ``figure.png`` (held-out images: real | translated |
  reconstructed, both directions), as the README shows it.

Usage::

    python scripts/make_preview.py                   # train the preview (about 6 min on 2 cores), then ship
    python scripts/make_preview.py --run runs/forest_abstract_quick   # ship from a finished preview run

The script checks what it writes: the float16 model translates the held-out photos within a
few levels of the float32 weights it came from (the largest difference is printed).
"""
from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "recipes/forest_abstract.yaml"
MODEL = ROOT / "models" / "forest_abstract_preview.pt"
PICTURE = ROOT / "docs" / "preview.jpg"


def train(out_dir: Path, extra: list[str]) -> tuple[list[str], float]:
    command = ["unpaired", "run", RECIPE, "--quick", f"out_dir={out_dir}", *extra]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "unpaired", *command[1:]], cwd=ROOT, check=True)
    return command, time.perf_counter() - start


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def last_kept(run: Path) -> tuple[int, Path]:
    from unpaired.store import checkpoint

    kept = checkpoint.kept_steps(run / "checkpoints")
    if not kept:
        raise SystemExit(f"{run}/checkpoints holds no step_<N>.pt: train with train.keep_every (the quick block does)")
    step = max(kept)
    return step, kept[step]


def shipped_state(source: Path, made_by: dict) -> dict:
    """The kept step's state with float16 weights, a neutral out_dir and the made_by record."""
    import torch

    from unpaired.store import checkpoint

    state = checkpoint.load(source)
    state["nets"] = {name: {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
                     for name, weights in state["nets"].items()}
    state["config"]["out_dir"] = "runs/forest_abstract_quick"  # the run's own folder names this machine
    state["made_by"] = made_by
    assert all(v.dtype != torch.float32 for w in state["nets"].values() for v in w.values())
    return state


def largest_difference(fp32: Path, fp16: Path) -> float:
    """The largest difference, in levels of 255, between the translations of the held-out photos."""
    import numpy as np
    from PIL import Image

    from unpaired import Translator

    photos = sorted((ROOT / "data" / "forest_abstract" / "testA").glob("*.jpg"))
    worst = 0.0
    for direction in ("a2b", "b2a"):
        a = Translator.from_checkpoint(fp32, direction=direction, device="cpu", precision="fp32")
        b = Translator.from_checkpoint(fp16, direction=direction, device="cpu", precision="fp32")
        for photo in photos:
            with Image.open(photo) as img:
                x = img.convert("RGB")
            ya, yb = (np.asarray(t(x), dtype=np.float32) for t in (a, b))
            worst = max(worst, float(np.abs(ya - yb).max()))
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a finished preview run to ship from (default: train one)")
    parser.add_argument("overrides", nargs="*", help="recipe overrides for the training (default: none)")
    args = parser.parse_args(argv)

    from unpaired.store import checkpoint
    from unpaired.runtime.devices import cpu_has_native_bf16

    seconds = None
    if args.run is None:
        args.run = Path(tempfile.mkdtemp(prefix="preview_")) / "run"
        command, seconds = train(args.run, args.overrides)
    else:
        command = ["unpaired", "run", RECIPE, "--quick", *args.overrides]  # as given: the run's own line below
    step, source = last_kept(args.run)
    state = checkpoint.load(source)
    made_by = {
        "script": "scripts/make_preview.py",
        "recipe": f"{RECIPE} --quick",
        "command": shlex.join(command),
        "steps": step,
        "precision": state.get("precision"),
        "machine": f"{cpu_name()}, native bf16: {cpu_has_native_bf16()}",
        "device_line": state.get("device_line"),  # the run's first line: data, steps, device, precision
        "training_seconds": round(seconds) if seconds else None,
        "date": datetime.date.today().isoformat(),
        "unpaired_version": state.get("unpaired_version"),
    }
    MODEL.parent.mkdir(exist_ok=True)
    checkpoint.save(shipped_state(source, made_by), MODEL)
    worst = largest_difference(source, MODEL)

    from PIL import Image

    with Image.open(args.run / "figure.png") as figure:
        picture = figure.convert("RGB")
    if picture.width > 1100:
        picture = picture.resize((1100, round(picture.height * 1100 / picture.width)), Image.Resampling.LANCZOS)
    picture.save(PICTURE, quality=85, optimize=True)
    print(f"{MODEL.relative_to(ROOT)}: step {step}, {MODEL.stat().st_size / 2**20:.1f} MiB; float16 vs float32 "
          f"translations of the held-out photos differ by at most {worst:.0f} levels of 255")
    print(f"{PICTURE.relative_to(ROOT)}: {picture.width}x{picture.height} from {args.run / 'figure.png'}")
    print(f"made by: {made_by}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
