"""Saturated blobs in the forest -> abstract preview: how much of each held-out translation sits
at the ends of the 8-bit range, and how much of it is magenta (hot pink), at every kept step of
one or more preview runs (side by side: e.g. one trained in bf16 and one in fp32).

Users saw hot-pink blobs appear in the B -> A translations and reconstructions between steps
750 and 1,000. A pixel counts as *saturated* when a channel is at 0-2 or 253-255 (the
generator's tanh output at about +-0.98), as *magenta* when red and blue are above 180 and green
below 90. Translations run in fp32 on the CPU, whole images at their own resolution.

    python bench/preview_blobs.py RUN [RUN ...]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TEST = {"a2b": ROOT / "data" / "forest_abstract" / "testA", "b2a": ROOT / "data" / "forest_abstract" / "testB"}


def shares(translator, folder):
    """(saturated share, magenta share, darkest-blob share) over the folder's translations."""
    saturated = magenta = dark = total = 0
    for path in sorted(folder.glob("*.jpg")):
        with Image.open(path) as img:
            y = np.asarray(translator(img.convert("RGB")), dtype=np.int32)
        r, g, b = y[..., 0], y[..., 1], y[..., 2]
        saturated += int(((y <= 2) | (y >= 253)).any(-1).sum())
        magenta += int(((r > 180) & (b > 180) & (g < 90)).sum())
        dark += int((y.max(-1) < 40).sum())
        total += r.size
    return saturated / total, magenta / total, dark / total


def main():
    from unpaired import Translator
    from unpaired.store import checkpoint

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    args = p.parse_args()
    print("| run | precision | step | direction | saturated | magenta | near-black |")
    print("|---|---|---|---|---|---|---|")
    for run in args.runs:
        for step, path in checkpoint.kept_steps(run / "checkpoints").items():
            precision = checkpoint.load(path).get("precision")
            for direction, folder in TEST.items():
                t = Translator.from_checkpoint(path, direction=direction, device="cpu", precision="fp32")
                s, m, d = shares(t, folder)
                print(f"| {run.name} | {precision} | {step} | {direction} | {100 * s:.2f}% | {100 * m:.3f}% | "
                      f"{100 * d:.2f}% |", flush=True)


if __name__ == "__main__":
    main()
