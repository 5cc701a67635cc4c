"""Metrics against independent numpy/scipy computations."""
import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
import torch

from unpaired.errors import UnpairedError
from unpaired.evaluation.metrics import fid, kid, l1, psnr, ssim


# --------------------------------------------------------------------------- references
def fid_scipy(x: np.ndarray, y: np.ndarray) -> float:
    """The textbook formula with scipy.linalg.sqrtm, as pytorch-fid computes it."""
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(s_x @ s_y).real
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(s_x) + np.trace(s_y) - 2 * np.trace(root))


def mmd2_loops(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written as plain loops."""
    d = x.shape[1]

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def ssim_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two (C, H, W) images in [0, 1]: scipy Gaussian filter (sigma 1.5, radius 5),
    border of 5 pixels discarded, mean over channels."""
    c1, c2 = 0.01**2, 0.03**2
    pad = 5
    per_channel = []
    for ca, cb in zip(a, b):
        def g(t):
            return scipy.ndimage.gaussian_filter(t, sigma=1.5, truncate=3.5, mode="reflect")

        mu_a, mu_b = g(ca), g(cb)
        var_a = g(ca * ca) - mu_a**2
        var_b = g(cb * cb) - mu_b**2
        cov = g(ca * cb) - mu_a * mu_b
        s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
        per_channel.append(s[pad:-pad, pad:-pad].mean())
    return float(np.mean(per_channel))


# --------------------------------------------------------------------------- FID
def test_fid_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    y = rng.normal(size=(250, 8)) @ rng.normal(size=(8, 8)) * 0.7 + 0.5
    expected = fid_scipy(x, y)
    assert expected > 1.0
    assert fid(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(expected, rel=1e-9)
    # float32 input is computed in float64 internally
    assert fid(torch.from_numpy(x).float(), torch.from_numpy(y).float()) == pytest.approx(expected, rel=1e-5)


def test_fid_is_symmetric_and_zero_on_itself():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(200, 16)))
    y = torch.from_numpy(rng.normal(size=(200, 16)) + 1.0)
    assert fid(x, x) == pytest.approx(0.0, abs=1e-9)
    assert fid(x, y) == pytest.approx(fid(y, x), rel=1e-9)


def test_fid_mean_shift_only():
    # Same covariance, means differ by a known vector: FID = |shift|^2 exactly.
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.normal(size=(100, 5)))
    shift = torch.tensor([1.0, -2.0, 0.0, 0.5, 3.0], dtype=torch.float64)
    assert fid(x, x + shift) == pytest.approx(float(shift.square().sum()), rel=1e-9)


def test_fid_small_n_singular_covariances():
    # Fewer samples than dimensions: both covariances are singular. Compare with the
    # eigenvalues of the (non-symmetric) product S_x S_y, an independent route.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 20))
    y = rng.normal(size=(9, 20)) + 0.3
    s_x, s_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    eig = np.linalg.eigvals(s_x @ s_y).real.clip(min=0)
    expected = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s_x) + np.trace(s_y) - 2 * np.sqrt(eig).sum()
    value = fid(torch.from_numpy(x), torch.from_numpy(y))
    assert np.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-6)


def test_fid_rejects_bad_input():
    with pytest.raises(UnpairedError, match="at least 2 samples"):
        fid(torch.zeros(1, 4), torch.zeros(5, 4))
    with pytest.raises(UnpairedError, match="different dimensions"):
        fid(torch.zeros(5, 4), torch.zeros(5, 3))
    with pytest.raises(UnpairedError, match="2-D"):
        fid(torch.zeros(5, 3, 8, 8), torch.zeros(5, 3, 8, 8))


# --------------------------------------------------------------------------- KID
def test_kid_single_full_subset_matches_loops():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(20, 6))
    y = rng.normal(size=(20, 6)) * 1.3 + 0.4
    mean, std = kid(torch.from_numpy(x), torch.from_numpy(y), subsets=1, subset_size=20)
    assert mean == pytest.approx(mmd2_loops(x, y), rel=1e-9)
    assert std == 0.0


def test_kid_subsets_match_loops_on_the_same_draws():
    # Re-draw the subsets exactly as documented (seeded torch generator, randperm for x then y).
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 4))
    y = rng.normal(size=(25, 4)) + 0.2
    gen = torch.Generator().manual_seed(7)
    values = []
    for _ in range(5):
        px = torch.randperm(30, generator=gen)[:10].numpy()
        py = torch.randperm(25, generator=gen)[:10].numpy()
        values.append(mmd2_loops(x[px], y[py]))
    mean, std = kid(torch.from_numpy(x), torch.from_numpy(y), subsets=5, subset_size=10, seed=7)
    assert mean == pytest.approx(np.mean(values), rel=1e-9)
    assert std == pytest.approx(np.std(values), rel=1e-9)


def test_kid_subset_size_capped_and_seeded():
    rng = np.random.default_rng(6)
    x = torch.from_numpy(rng.normal(size=(15, 4)))
    y = torch.from_numpy(rng.normal(size=(12, 4)))
    # subset_size larger than both sets: capped at 12, still works
    a = kid(x, y, subsets=3, subset_size=1000, seed=1)
    assert a == kid(x, y, subsets=3, subset_size=1000, seed=1)
    torch.manual_seed(123)  # the global RNG does not matter
    assert a == kid(x, y, subsets=3, subset_size=1000, seed=1)


def test_kid_same_vs_different_distribution():
    rng = np.random.default_rng(8)
    d = 32
    x1 = torch.from_numpy(rng.normal(size=(400, d)))
    x2 = torch.from_numpy(rng.normal(size=(400, d)))
    y = torch.from_numpy(rng.normal(size=(400, d)) * 1.5 + 0.5)
    same, same_std = kid(x1, x2, subsets=20, subset_size=200)
    diff, _ = kid(x1, y, subsets=20, subset_size=200)
    assert abs(same) < 3 * same_std + 0.01
    assert diff > 20 * max(abs(same), same_std)
    assert diff > 0.5


# --------------------------------------------------------------------------- paired metrics
def test_psnr_hand_computation():
    x = torch.zeros(2, 3, 4, 4, dtype=torch.float64)  # 0.5 grey on the [0, 1] scale
    y = x.clone()
    y[0] += 0.2  # every pixel off by 0.1 on [0, 1]: mse 0.01 -> 20 dB
    y[1, 0, 0, 0] = 1.0  # one of 48 values off by 0.5: mse 0.25 / 48
    values = psnr(y, x)
    assert values.shape == (2,)
    assert values[0].item() == pytest.approx(20.0, rel=1e-9)
    assert values[1].item() == pytest.approx(10 * np.log10(48 / 0.25), rel=1e-9)
    assert torch.isinf(psnr(x, x)).all()


def test_l1_hand_computation():
    x = torch.full((2, 3, 4, 4), -1.0)
    y = x.clone()
    y[0] = 1.0  # black vs white: 1.0 on [0, 1]
    y[1, :, :2] = 0.0  # half of the pixels off by 0.5
    assert torch.allclose(l1(x, y), torch.tensor([1.0, 0.25], dtype=torch.float64))


def test_ssim_identical_is_one():
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    assert torch.allclose(ssim(x, x), torch.ones(3, dtype=torch.float64), atol=1e-12)


def test_ssim_matches_scipy_gaussian_filter():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 40, 48, generator=gen) * 2 - 1
    noise = torch.randn(2, 3, 40, 48, generator=gen) * 0.3
    y = (x * 0.8 + noise).clamp(-1, 1)
    values = ssim(x, y)
    a, b = ((x + 1) / 2).double().numpy(), ((y + 1) / 2).double().numpy()
    expected = [ssim_scipy(a[i], b[i]) for i in range(2)]
    assert 0.05 < expected[0] < 0.95
    assert values.numpy() == pytest.approx(expected, rel=1e-7)


def test_ssim_orders_degradation():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    noise = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    light = ssim(x, (x + 0.05 * noise).clamp(-1, 1))
    heavy = ssim(x, (x + 0.5 * noise).clamp(-1, 1))
    assert 1.0 > light.item() > heavy.item()


def test_paired_metrics_reject_mismatched_shapes():
    with pytest.raises(UnpairedError, match="one shape"):
        l1(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 9))
    with pytest.raises(UnpairedError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
