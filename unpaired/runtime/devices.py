"""Devices, precision and loader workers, shared by training, translation and evaluation.
``key`` names the recipe key or flag that set the value, for error messages."""
import contextlib
import ctypes
import os
import sys

import torch

from ..recipe.config import PRECISIONS
from ..errors import UnpairedError, one_of


def pick_device(name="auto", key="train.device"):
    """``auto``: the GPU when torch sees one, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UnpairedError(f"{key}: {name!r} is not a device (auto, cpu, cuda, cuda:1 ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UnpairedError(f"{key}: {name!r} asked for, but torch sees no CUDA GPU (use auto or cpu)")
    return device


# CPU features that do bf16 arithmetic in hardware (x86: AVX-512 BF16, AMX-BF16). Without them
# bf16 autocast only adds conversions around fp32 arithmetic, so auto stays fp32 there.
NATIVE_BF16_FEATURES = ("avx512_bf16", "amx_bf16")
CPUINFO = "/proc/cpuinfo"


def cpu_features():
    """The CPU's feature flags: torch's runtime detection (torch.cpu.get_capabilities), or the
    flags of /proc/cpuinfo where that is missing (older torch); empty when neither is at hand."""
    get = getattr(torch.cpu, "get_capabilities", None)
    if get is not None:
        try:
            return {k for k, v in get().items() if v is True}
        except Exception:  # a detection failure means "unknown", never a failed run
            pass
    try:
        with open(CPUINFO) as f:
            return cpuinfo_flags(f.read())
    except OSError:
        return set()


def cpuinfo_flags(text):
    """The feature flags of a /proc/cpuinfo text (its first ``flags`` line)."""
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


# "1" or "0" overrides the detection: what ``precision: auto`` picks on another CPU, reproduced on
# this one (the test suite runs both ways in CI, so no test can assume fp32 where auto is bf16).
NATIVE_BF16_ENV = "UNPAIRED_CPU_BF16"


def cpu_has_native_bf16():
    """True when the CPU does bf16 arithmetic natively (AVX-512 BF16 or AMX-BF16), or when
    ``UNPAIRED_CPU_BF16=1`` says to behave as if it did (``0``: as if it did not)."""
    forced = os.environ.get(NATIVE_BF16_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if forced:
        raise UnpairedError(f"{NATIVE_BF16_ENV}={forced!r}: set it to 1 (as on a CPU with native bf16), "
                            "0 (as on one without) or leave it unset (detect)")
    return any(f in cpu_features() for f in NATIVE_BF16_FEATURES)


def autocast_dtype(precision, device, key="train.precision"):
    """The autocast dtype for ``precision`` on ``device`` (None: fp32). ``auto`` is bf16 on a
    CUDA GPU that supports it and on a CPU with native bf16 arithmetic (AVX-512 BF16, AMX),
    fp32 otherwise (BENCHMARKS.md has the measurements behind the choice)."""
    one_of(key, precision, PRECISIONS)
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        else:
            precision = "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise UnpairedError(f"{key}: fp16 needs a CUDA device (use bf16 or fp32 on the CPU)")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device, dtype):
    """torch.autocast for ``dtype``, or nothing for fp32 (None)."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def precision_name(dtype):
    """"fp32", "bf16" or "fp16" for an autocast dtype of autocast_dtype."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def usable_cores():
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def loader_workers(value, device, cores=None, threads=None, processes=None):
    """The data loader's worker processes for ``data.num_workers`` (a number, or ``auto``).

    ``auto`` on the CPU: the cores left after torch's compute threads, at most 2. A CPU step
    stalls when one of its threads loses its core (all threads wait for the slowest), and
    loading an image costs milliseconds next to a step's tenths of seconds, so on a machine
    whose cores the threads already use (2 cores, 2 threads) the loading happens in the
    training process (0 workers). On a GPU: 2 to 8 workers per process, one per core left to
    each process, since the step is fast and the loader must keep up. ``cores``: usable cores
    of the machine, ``threads``: torch's intra-op threads, ``processes``: training processes
    on this machine (torchrun's LOCAL_WORLD_SIZE); each defaults to what is detected.
    """
    if value != "auto":
        return int(value)
    cores = usable_cores() if cores is None else cores
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if processes is None else processes
    per_process = max(1, cores // max(1, processes))
    if device.type == "cuda":
        return min(8, max(2, per_process - 1))
    threads = torch.get_num_threads() if threads is None else threads
    return min(2, max(0, per_process - threads))


def keep_freed_memory(limit=1 << 30, one_arena=False):
    """Let this process reuse the memory it frees rather than hand it back to the kernel, for
    blocks up to ``limit`` bytes. glibc serves a block over 32 MiB with fresh mmap() pages and
    unmaps it on free, so a loop whose activations are that large (CPU inference on big images,
    tiles, video frames) pays a page fault for every 4 KiB of them on every pass, most of its
    time in the kernel (bench/tiling.py --keep-freed, BENCHMARKS.md). The cost: the process keeps
    its peak memory until it exits.
    ``one_arena``: also serve every thread from the main heap (``M_ARENA_MAX`` = 1, set before
    any thread allocates): glibc gives each thread an arena whose heaps hold at most 64 MiB, so a
    thread's larger blocks would be fresh mmap() pages on every pass whatever the thresholds
    (``unpaired serve`` translates in its request threads).
    glibc (Linux) only; True when set, False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # another C library (musl): leave it alone
        return False
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8  # mallopt's parameters (malloc.h)
    ok = bool(libc.mallopt(m_mmap_threshold, int(limit))) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    return ok and (not one_arena or bool(libc.mallopt(m_arena_max, 1)))
