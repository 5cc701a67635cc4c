"""Feature extractors for FID / KID, and a verified, cached weight downloader.

An extractor is an ``nn.Module`` that takes images ``(N, 3, H, W)`` with values in [-1, 1]
(any H, W: it resizes internally) and returns float features ``(N, D)``; ``extractor.dim``
is D. Extractors are frozen and always in eval mode.

* ``inception`` (:class:`InceptionFID`): the Inception-v3 network and weights that
  published FIDs use (pytorch-fid's ``pt_inception-2015-12-05``, 2048-d pool features).
  The weights (~96 MB) are downloaded on first use into ``$UNPAIRED_CACHE`` (default
  ``~/.cache/unpaired/``) and checked by SHA-256.
* ``tiny`` (:class:`TinyFeatures`): a fixed, seeded random conv net plus colour statistics.
  Needs no download; good for comparing runs with each other, **not** comparable with any
  published FID.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.download import DownloadError, fetch, sha256_of
from ..errors import UnpairedError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "cache_dir",
    "download_weights",
    "InceptionFID",
    "TinyFeatures",
    "compute_features",
    "builtin_extractors",
]

# pytorch-fid's port of TensorFlow's 2015-12-05 Inception graph, as used by TTUR's FID code.
# torch-fidelity re-hosts the same file (same size and digest). The digest is pinned by
# several independent public projects and begins with the 8 hex digits in the file name
# (torch.hub's naming convention: name-<sha256 prefix>.pth). 95,628,359 bytes.
INCEPTION_URLS = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
)
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
INCEPTION_FILENAME = "pt_inception-2015-12-05-6726825d.pth"


# --------------------------------------------------------------------------- downloads
def cache_dir() -> Path:
    """Where downloaded weights live: ``$UNPAIRED_CACHE`` or ``~/.cache/unpaired``."""
    env = os.environ.get("UNPAIRED_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "unpaired"


def _check_expected_digest(sha256: str) -> str:
    sha256 = sha256.lower()
    if len(sha256) < 8 or len(sha256) > 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"sha256 must be 8 to 64 hex digits (a full digest or its prefix); got {sha256!r}")
    return sha256


def _fetch_verified(url: str, sha256: str, target: Path, timeout: float) -> str | None:
    """Download ``url`` into a partial file of its own beside ``target`` (two processes sharing
    the cache never touch each other's) and rename it into place when its digest starts with
    ``sha256``: then None; else the digest it had. The partial file never outlives the call."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    part = Path(name)
    try:
        fetch(url, part, progress=False, retries=0, timeout=timeout)
        actual = sha256_of(part)
        if actual.startswith(sha256):
            os.replace(part, target)
            return None
        return actual
    finally:
        part.unlink(missing_ok=True)


def download_weights(url: str | Sequence[str], sha256: str, filename: str,
                     directory: str | os.PathLike | None = None, timeout: float = 60.0) -> Path:
    """Return the path of a verified copy of a weights file, downloading it on first use.

    ``url`` is one URL or a sequence of mirrors tried in order. ``sha256`` is the expected
    hex digest, or a prefix of at least 8 digits. The file lives in ``directory`` (default
    :func:`cache_dir`) as ``filename``; a cached copy that verifies is reused without any
    network access, one that does not is replaced. Downloads (``unpaired.data.download.fetch``)
    go to a partial file that is renamed into place only after its digest matches, so the
    cache never holds a partial or wrong file. Raises :class:`UnpairedError` when no URL
    yields a matching file.
    """
    sha256 = _check_expected_digest(sha256)
    urls = [url] if isinstance(url, str) else list(url)
    folder = Path(directory).expanduser() if directory is not None else cache_dir()
    target = folder / filename
    if target.is_file():
        if sha256_of(target).startswith(sha256):
            return target
        target.unlink()  # corrupt or stale copy: fetch it again
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UnpairedError(f"cannot create the weights cache {folder}: {exc}. Set $UNPAIRED_CACHE "
                            "to a writable folder.") from exc
    failures = []  # (url, short reason, whole message)
    for candidate in urls:
        try:
            actual = _fetch_verified(candidate, sha256, target, timeout)
        except DownloadError as exc:
            failures.append((candidate, exc.reason, f"could not download {candidate} to {target}: {exc.reason}. "
                             f"Check the network, or download the file yourself and place it at {target} "
                             "(set $UNPAIRED_CACHE to use another folder)."))
            continue
        if actual is None:
            return target
        failures.append((candidate, f"it has SHA-256 {actual}, not the expected {sha256}",
                         f"the file downloaded from {candidate} has SHA-256 {actual}, expected {sha256}"
                         f"{'...' if len(sha256) < 64 else ''}; it was deleted. The server may have sent "
                         "an error page or a changed file: retry later, or download it yourself, check "
                         f"its digest, and place it at {target}."))
    if len(failures) == 1:
        raise UnpairedError(failures[0][2])
    tried = "; ".join(f"{candidate}: {reason}" for candidate, reason, _ in failures)
    raise UnpairedError(  # one message, one piece of advice, however many mirrors were tried
        f"could not download {filename} from any of its {len(failures)} mirrors ({tried}). Check the network, "
        f"or download the file yourself from one of them, check its SHA-256 ({sha256}), and place it at "
        f"{target} (set $UNPAIRED_CACHE to use another folder).")


class _FrozenExtractor(nn.Module):
    """Base: parameters frozen, eval mode kept whatever ``.train()`` is asked."""

    dim: int

    def _freeze(self) -> None:
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Self:
        # BatchNorm must keep its running statistics: an extractor never trains.
        return super().train(False)

    def _check_images(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise UnpairedError(
                f"{type(self).__name__} takes RGB image batches (N, 3, H, W) in [-1, 1]; got shape "
                f"{tuple(images.shape)}. Convert grayscale/RGBA images to RGB first."
            )
        return images.to(device=next(self.parameters()).device, dtype=torch.float32)


class InceptionFID(_FrozenExtractor):
    """2048-d pool features of the FID Inception network (pytorch-fid's weights).

    Input (N, 3, H, W) in [-1, 1]. With ``quantize`` (default) images are first rounded to
    8-bit levels, as when FID is computed from saved PNG files; they are then resized to
    299x299 bilinearly (``align_corners=False``, no antialiasing: pytorch-fid's protocol) and
    fed to the network, which expects [-1, 1] (TF Inception's input scaling).

    ``load_weights=False`` builds the architecture with untrained weights (for tests; the
    features are then meaningless). ``weights_path`` loads a local copy instead of the cache.
    """

    dim = 2048
    input_size = 299

    def __init__(self, load_weights: bool = True, quantize: bool = True,
                 weights_path: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.quantize = quantize
        from .inception import fid_inception_v3  # torchvision: imported here, checked (unpaired.evaluation.vision)

        self.net = fid_inception_v3()
        if load_weights:
            if weights_path is None:
                try:
                    weights_path = download_weights(INCEPTION_URLS, INCEPTION_SHA256, INCEPTION_FILENAME)
                except UnpairedError as exc:
                    raise UnpairedError(f"{exc} To score offline instead: --extractor tiny (unpaired eval) or "
                                        "eval.extractor=tiny (a recipe); its numbers are not comparable with "
                                        "published FIDs.") from None
            self.net.load_state_dict(_load_state_dict(Path(weights_path)))
        self._freeze()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self._check_images(images).clamp(-1, 1)
        if self.quantize:
            x = torch.round((x + 1) * 127.5) / 127.5 - 1
        x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        net: Any = self.net  # torchvision's Inception3: its layers by name
        for layer in (net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, net.maxpool1,
                      net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, net.maxpool2,
                      net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a,
                      net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e,
                      net.Mixed_7a, net.Mixed_7b, net.Mixed_7c):
            x = layer(x)
        return x.mean(dim=(2, 3))


def _load_state_dict(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch raises several kinds
        raise UnpairedError(f"cannot read weights from {path}: {exc}. Delete the file and retry.") from exc
    if not isinstance(state, dict):
        raise UnpairedError(f"{path} does not hold a state dict (found {type(state).__name__}).")
    return state


# --------------------------------------------------------------------------- offline extractor
class TinyFeatures(_FrozenExtractor):
    """A small deterministic extractor that needs no download.

    Images are resized to ``size`` x ``size`` (bilinear, antialiased) and passed through three
    3x3 stride-2 convolutions (3 -> 32 -> 64 -> 128, ReLU) whose weights are drawn from
    NumPy's legacy ``RandomState(seed)`` (a stream NumPy keeps stable across versions). The
    features are the spatial mean and standard deviation of the last map (256) plus the mean
    and standard deviation of each colour channel (6): ``dim`` = 262.

    Random-network features track colour, texture and layout statistics well enough to rank
    checkpoints of one run or compare runs on one data set, but the numbers are **not**
    comparable with published FID/KID values, nor between different ``seed``/``size``.
    """

    widths = (32, 64, 128)

    def __init__(self, seed: int = 0, size: int = 64) -> None:
        super().__init__()
        if size < 16:
            raise UnpairedError(f"TinyFeatures size must be at least 16 pixels; got {size}.")
        self.size = size
        self.seed = seed
        rng = np.random.RandomState(seed)
        layers = []
        in_ch = 3
        for out_ch in self.widths:
            conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=2, padding=1)
            fan_in = in_ch * 9
            weight = rng.standard_normal((out_ch, in_ch, 3, 3)) * np.sqrt(2.0 / fan_in)
            bias = rng.standard_normal(out_ch) * 0.1
            assert conv.bias is not None  # bias=True
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(weight))
                conv.bias.copy_(torch.from_numpy(bias))
            layers += [conv, nn.ReLU()]
            in_ch = out_ch
        self.body = nn.Sequential(*layers)
        self.dim = 2 * self.widths[-1] + 6
        self._freeze()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self._check_images(images)
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        colour = torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], 1)
        maps = self.body(x).flatten(2)
        return torch.cat([maps.mean(2), maps.std(2), colour], 1)


# --------------------------------------------------------------------------- helpers
@torch.no_grad()
def compute_features(extractor: nn.Module, images: torch.Tensor | Iterable[torch.Tensor],
                     batch_size: int = 32) -> torch.Tensor:
    """Features (N, D) as float64 on the CPU of a tensor (N, 3, H, W) in [-1, 1], taken in
    batches of ``batch_size``, or of an iterable of such batches (e.g. a DataLoader's
    image tensors)."""
    if isinstance(images, torch.Tensor):
        if images.ndim == 3:
            images = images[None]
        batches: Iterable[torch.Tensor] = images.split(batch_size)
    else:
        batches = images
    out = [extractor(batch).double().cpu() for batch in batches]
    if not out:
        raise UnpairedError("no images to compute features of: the image set is empty.")
    return torch.cat(out)


def builtin_extractors() -> dict[str, tuple[Callable[..., nn.Module], str]]:
    """The built-in extractors by name: ``{name: (factory, help)}``."""
    return {
        "inception": (
            InceptionFID,
            "FID Inception-v3 (pytorch-fid weights, 2048-d); the one published FIDs use. "
            "Downloads ~96 MB once into $UNPAIRED_CACHE or ~/.cache/unpaired.",
        ),
        "tiny": (
            TinyFeatures,
            "Offline seeded random conv net + colour stats (262-d). Needs no download; "
            "NOT comparable with published FID/KID.",
        ),
    }
