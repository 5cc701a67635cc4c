"""Metric arithmetic: distribution distances on features (FID, KID) and paired image metrics.

Distribution metrics take two feature sets ``(N, D)`` and ``(M, D)`` (from an extractor in
:mod:`unpaired.evaluation.features`) and compute in float64.

Paired metrics take two image batches ``(N, C, H, W)`` with values in **[-1, 1]** (what the
generators output) and return one value per image, a float64 tensor of shape ``(N,)``, so a
caller can write per-image rows and take means. They are all computed on the **[0, 1]** scale,
``(x + 1) / 2``: PSNR with peak 1, SSIM with dynamic range 1, L1 as the mean absolute error
on that scale (half of the L1 distance measured on [-1, 1]).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..errors import UnpairedError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["fid", "kid", "psnr", "ssim", "l1", "gaussian_window"]


# --------------------------------------------------------------------------- distributions
def _as_features(feats: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    feats = torch.as_tensor(feats)
    if feats.ndim != 2:
        raise UnpairedError(
            f"{name} must be a 2-D feature matrix (N, D); got shape {tuple(feats.shape)}. "
            "Pass extractor outputs stacked over images, not images."
        )
    if not torch.isfinite(feats).all():
        raise UnpairedError(f"{name} contains NaN or infinite values; check the images fed to the extractor.")
    return feats.detach().to(device="cpu", dtype=torch.float64)


def _check_same_dim(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape[1] != y.shape[1]:
        raise UnpairedError(
            f"feature sets have different dimensions ({x.shape[1]} vs {y.shape[1]}); "
            "compute both with the same extractor."
        )


def _sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues from
    rounding are clipped to 0)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def _trace_sqrt_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """tr((S_x S_y)^(1/2)) of the unbiased covariances of samples x (N, D) and y (M, D)."""
    a = (x - x.mean(0)) / math.sqrt(x.shape[0] - 1)  # S_x = a.T a
    b = (y - y.mean(0)) / math.sqrt(y.shape[0] - 1)  # S_y = b.T b
    if a.shape[0] * b.shape[0] <= a.shape[1] ** 2:
        # Few samples: S_x S_y = a.T (a b.T) b has the nonzero eigenvalues of (a b.T)(a b.T).T,
        # so the trace of its square root is the sum of singular values of the N x M matrix a b.T.
        return torch.linalg.svdvals(a @ b.T).sum()
    cov_x, cov_y = a.T @ a, b.T @ b
    root_x = _sqrtm_psd(cov_x)
    middle = root_x @ cov_y @ root_x
    middle = (middle + middle.T) / 2  # symmetric up to rounding; make it exactly so for eigvalsh
    return torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()


def fid(feats_x: torch.Tensor | np.ndarray, feats_y: torch.Tensor | np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) and (M, D).

    ``|mu_x - mu_y|^2 + tr(S_x) + tr(S_y) - 2 tr((S_x S_y)^(1/2))`` with unbiased covariances
    (denominator N - 1, as pytorch-fid's ``np.cov``), in float64. The trace of the matrix
    square root is the sum of square roots of the eigenvalues of the symmetric PSD matrix
    ``S_x^(1/2) S_y S_x^(1/2)`` (same spectrum as ``S_x S_y``) or, when there are fewer
    samples than dimensions, the sum of singular values of the N x M cross-product of the
    centred samples (same value, much cheaper). Neither route inverts anything, so singular
    covariances (N < D) need no regularising offset and give a finite answer.
    Note FID is strongly biased upwards for small N: compare values only at equal N, and
    prefer :func:`kid` for small test sets.
    """
    x = _as_features(feats_x, "feats_x")
    y = _as_features(feats_y, "feats_y")
    _check_same_dim(x, y)
    for name, f in (("feats_x", x), ("feats_y", y)):
        if f.shape[0] < 2:
            raise UnpairedError(f"FID needs at least 2 samples per set; {name} has {f.shape[0]}.")
    trace_x = x.var(0, unbiased=True).sum()
    trace_y = y.var(0, unbiased=True).sum()
    value = (x.mean(0) - y.mean(0)).square().sum() + trace_x + trace_y - 2 * _trace_sqrt_product(x, y)
    return max(float(value), 0.0)


def _polynomial_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a @ b.T / a.shape[1] + 1) ** 3


def _mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 estimate between samples x (m, D) and y (n, D), cubic polynomial kernel."""
    m, n = x.shape[0], y.shape[0]
    k_xx = _polynomial_kernel(x, x)
    k_yy = _polynomial_kernel(y, y)
    k_xy = _polynomial_kernel(x, y)
    term_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    term_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return term_xx + term_yy - 2 * k_xy.mean()


def kid(feats_x: torch.Tensor | np.ndarray, feats_y: torch.Tensor | np.ndarray, subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD^2 with kernel ``k(a, b) = (a.b / D + 1)^3``.

    Averaged over ``subsets`` random subsets of ``min(subset_size, N, M)`` rows drawn without
    replacement from each set (a torch generator seeded with ``seed``, so the result is
    reproducible and independent of the global RNG). Returns ``(mean, std)`` over the
    subsets (population std, as torch-fidelity reports it). Unbiased: it can be slightly
    negative when both sets come from one distribution.
    """
    x = _as_features(feats_x, "feats_x")
    y = _as_features(feats_y, "feats_y")
    _check_same_dim(x, y)
    if subsets < 1:
        raise UnpairedError(f"KID subsets must be >= 1; got {subsets}.")
    if subset_size < 2:
        raise UnpairedError(f"KID subset_size must be >= 2; got {subset_size}.")
    size = min(subset_size, x.shape[0], y.shape[0])
    if size < 2:
        raise UnpairedError(
            f"KID needs at least 2 samples per set; got {x.shape[0]} and {y.shape[0]}."
        )
    generator = torch.Generator().manual_seed(seed)
    values = torch.empty(subsets, dtype=torch.float64)
    for i in range(subsets):
        pick_x = torch.randperm(x.shape[0], generator=generator)[:size]
        pick_y = torch.randperm(y.shape[0], generator=generator)[:size]
        values[i] = _mmd2_unbiased(x[pick_x], y[pick_y])
    return float(values.mean()), float(values.std(unbiased=False))


# --------------------------------------------------------------------------- paired images
def _to_unit_range(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.ndim != 4 or x.shape != y.shape:
        raise UnpairedError(
            f"paired metrics need two image batches of one shape (N, C, H, W); got "
            f"{tuple(x.shape)} and {tuple(y.shape)}. Add a batch dimension with x[None] for one image."
        )
    x = x.detach().to(torch.float64)
    y = y.detach().to(device=x.device, dtype=torch.float64)
    return (x + 1) / 2, (y + 1) / 2


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image on the [0, 1] scale; inputs in [-1, 1]. Shape (N,)."""
    a, b = _to_unit_range(x, y)
    return (a - b).abs().flatten(1).mean(1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, peak 1 on the [0, 1] scale; inputs in
    [-1, 1]. Identical images give ``inf``. Shape (N,)."""
    a, b = _to_unit_range(x, y)
    mse = (a - b).square().flatten(1).mean(1)
    return 10 * torch.log10(1 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 1-D Gaussian window (float64) of odd ``size``."""
    half = (size - 1) / 2
    coords = torch.arange(size, dtype=torch.float64) - half
    window = torch.exp(-(coords**2) / (2 * sigma**2))
    return window / window.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5, k1: float = 0.01,
         k2: float = 0.03) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004); inputs in [-1, 1]. Shape (N,).

    Computed on the [0, 1] scale (dynamic range L = 1, C1 = (k1 L)^2, C2 = (k2 L)^2) with a
    Gaussian window (11 taps, sigma 1.5) applied separably without padding, so only full
    windows count; the SSIM map is averaged over positions and channels. This equals
    filtering with any padding and then discarding the (window_size - 1) / 2 border, as
    scikit-image does with ``gaussian_weights=True, use_sample_covariance=False``.
    """
    a, b = _to_unit_range(x, y)
    if min(a.shape[-2:]) < window_size:
        raise UnpairedError(
            f"SSIM needs images of at least {window_size}x{window_size} pixels; got "
            f"{a.shape[-2]}x{a.shape[-1]}. Evaluate at a larger size or pass a smaller window_size."
        )
    channels = a.shape[1]
    window = gaussian_window(window_size, sigma).to(a.device)
    rows = window.view(1, 1, window_size, 1).expand(channels, 1, window_size, 1)
    cols = window.view(1, 1, 1, window_size).expand(channels, 1, 1, window_size)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, rows, groups=channels), cols, groups=channels)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = k1**2, k2**2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.flatten(1).mean(1)

