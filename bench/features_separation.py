"""How well each offline feature extractor tells the shipped forest photos from the abstract
paintings: KID between the two domains against KID between two halves of one domain (the
floor: same distribution), per extractor, on the 56 + 56 images of data/forest_abstract (train
and test together), resized to 128 px. A useful extractor for scoring translations puts the
domains far apart relative to its floor: ``separation`` = KID(A, B) / mean(KID(A1, A2), KID(B1, B2)).

    python bench/features_separation.py                      # tiny and efficientnet_lite0
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from quality import machine

ROOT = Path(__file__).resolve().parents[1]


def images(folders, side=128):
    paths = sorted(p for f in folders for p in (ROOT / "data" / "forest_abstract" / f).iterdir()
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    out = []
    for p in paths:
        im = Image.open(p).convert("RGB").resize((side, side), Image.BICUBIC)
        out.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 127.5 - 1)
    return torch.stack(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--extractors", default="tiny,efficientnet_lite0")
    args = p.parse_args()
    from unpaired.evaluation.metrics import kid
    from unpaired.loading import get_registry

    a, b = images(("trainA", "testA")), images(("trainB", "testB"))
    g = torch.Generator().manual_seed(0)
    ia, ib = torch.randperm(len(a), generator=g), torch.randperm(len(b), generator=g)
    print("| extractor | dim | KID(A, B) | KID(A1, A2) | KID(B1, B2) | separation |")
    print("|---|---|---|---|---|---|")
    for name in args.extractors.split(","):
        net = get_registry().create("feature_extractor", name, {})
        with torch.no_grad():
            fa, fb = net(a), net(b)
        half_a, half_b = len(a) // 2, len(b) // 2
        ab = kid(fa, fb)[0]
        aa = kid(fa[ia[:half_a]], fa[ia[half_a:]])[0]
        bb = kid(fb[ib[:half_b]], fb[ib[half_b:]])[0]
        floor = (abs(aa) + abs(bb)) / 2
        print(f"| {name} | {net.dim} | {ab:.4f} | {aa:.4f} | {bb:.4f} | {ab / floor:.0f}x |")
    print(f"\n{len(a)} forest photos (A), {len(b)} paintings (B), 128 px; {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
