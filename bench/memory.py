"""Peak memory of one generator training pass (forward + backward), with and without
activation checkpointing of the ResNet's residual blocks (`checkpoint_blocks`), side by side.

    python bench/memory.py [--size 512] [--blocks 9] [--device cpu|cuda]

On the CPU each variant runs in its own subprocess and reports the growth of its peak RSS
over the pass; on CUDA, torch.cuda.max_memory_allocated above what the network holds.
"""
import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def one(size, blocks, checkpoint, device):
    import unpaired

    g = unpaired.get_registry().create("generator", "resnet", in_channels=3, out_channels=3,
                                       n_blocks=blocks, checkpoint_blocks=checkpoint).to(device)
    x = torch.rand(1, 3, size, size, device=device) * 2 - 1
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    g(x).square().mean().backward()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"peak_mib": (peak - base) / 2**20, "seconds": time.perf_counter() - t0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--blocks", type=int, default=9)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--one", choices=("plain", "checkpointed"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.size, args.blocks, args.one == "checkpointed", args.device)))
        return
    rows = {}
    for variant in ("plain", "checkpointed"):
        out = subprocess.run([sys.executable, __file__, "--one", variant, "--size", str(args.size),
                              "--blocks", str(args.blocks), "--device", args.device],
                             capture_output=True, text=True, check=True)
        rows[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"resnet ngf 64, {args.blocks} blocks, {args.size}x{args.size}, batch 1, {args.device}: "
          "peak memory of one forward + backward above the network's own")
    print("| variant | peak MiB | seconds |\n|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['peak_mib']:.0f} | {r['seconds']:.2f} |")
    saved = 1 - rows["checkpointed"]["peak_mib"] / rows["plain"]["peak_mib"]
    print(f"checkpointing saves {saved:.0%} of the pass's peak memory")


if __name__ == "__main__":
    main()
