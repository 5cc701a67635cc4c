"""The synthetic dataset: shapes, determinism, (un)alignment, that the task is learnable, and the
thin structures (lines of exact widths, small objects) with their per-pixel masks."""
import numpy as np
import pytest
import torch

from unpaired import get_registry, register_plugin, unregister_plugin
from unpaired.errors import UnpairedError
from unpaired.evaluation.metrics import l1, psnr
from unpaired.plugins import synthetic
from unpaired.plugins.synthetic import a_to_b, ground_truth_pairs, make_synthetic


def test_items_shape_range_and_length():
    for split in ("train", "test"):
        ds = make_synthetic(size=32, n=5, split=split)
        assert len(ds) == 5
        item = ds[3]
        for key in ("A", "B"):
            x = item[key]
            assert x.shape == (3, 32, 32) and x.dtype == torch.float32
            assert x.min() >= -1 and x.max() <= 1
            assert x.std() > 0.1  # not a flat image
    with pytest.raises(IndexError):
        make_synthetic(size=32, n=5)[5]


def test_deterministic_given_seed():
    torch.manual_seed(0)
    first = make_synthetic(size=32, n=4, seed=3)[2]
    torch.manual_seed(0)
    second = make_synthetic(size=32, n=4, seed=3)[2]
    assert torch.equal(first["A"], second["A"]) and torch.equal(first["B"], second["B"])
    other = make_synthetic(size=32, n=4, seed=4, split="test")[2]
    assert not torch.allclose(first["A"], other["A"])


def test_train_items_are_unaligned():
    n = 6
    ds = make_synthetic(size=32, n=n, split="train")
    truth_a, truth_b = ground_truth_pairs(n, size=32, split="train")
    torch.manual_seed(0)
    items = [ds[i % n] for i in range(3 * n)]
    for i, item in enumerate(items):
        assert torch.equal(item["A"], truth_a[i % n])
        # B comes from a separate stream of scenes: never the counterpart of this A
        assert (item["B"] - truth_b[i % n]).abs().mean() > 0.05
    # B is drawn with torch's global RNG (seeded by the engine per item): it varies ...
    distinct = {tuple(item["B"].flatten()[:16].tolist()) for item in items}
    assert len(distinct) > 2
    # ... and is reproducible under the same seed
    torch.manual_seed(5)
    b1 = ds[0]["B"]
    torch.manual_seed(5)
    assert torch.equal(ds[0]["B"], b1)


def test_test_pairs_are_aligned_and_disjoint_from_train():
    ds = make_synthetic(size=32, n=4, split="test")
    for i in range(4):
        item = ds[i]
        assert torch.equal(item["B"], a_to_b(item["A"]))
    a, b = ground_truth_pairs(4, size=32)
    assert torch.equal(a[1], ds[1]["A"])
    assert torch.allclose(b[1], ds[1]["B"], atol=1e-6)
    train_a, _ = ground_truth_pairs(4, size=32, split="train")
    assert all((train_a[i] - a[j]).abs().mean() > 0.05 for i in range(4) for j in range(4))


def test_domains_differ_in_colour_distribution():
    # A is warm (red > blue on average), B cool (green/blue dominate): the domains are
    # distinguishable, which unpaired training needs.
    a, b = ground_truth_pairs(20, size=32)
    mean_a, mean_b = a.mean(dim=(0, 2, 3)), b.mean(dim=(0, 2, 3))
    assert mean_a[0] > mean_a[2] + 0.15
    assert max(mean_b[1], mean_b[2]) > mean_b[0] + 0.15


def _colour_features(x):
    """Per-pixel quadratic colour features (N*H*W, 10) of images (N, 3, H, W)."""
    p = x.permute(0, 2, 3, 1).reshape(-1, 3).double()
    r, g, b = p.unbind(1)
    return torch.stack([torch.ones_like(r), r, g, b, r * r, g * g, b * b, r * g, r * b, g * b], 1)


def _patch_features(x):
    """Per-pixel colour features plus the 3x3 neighbourhood (N*H*W, 37)."""
    patches = torch.nn.functional.unfold(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"), 3)
    patches = patches.transpose(1, 2).reshape(-1, 27).double()
    return torch.cat([_colour_features(x), patches], 1)


def _fit_and_apply(features, train_a, train_b, test_a):
    target = train_b.permute(0, 2, 3, 1).reshape(-1, 3).double()
    coef = torch.linalg.lstsq(features(train_a), target).solution
    out = features(test_a) @ coef
    n, _, h, w = test_a.shape
    return out.reshape(n, h, w, 3).permute(0, 3, 1, 2).clamp(-1, 1)


def test_task_is_learnable_by_a_local_translator():
    # Fit maps on hidden *train* pairs, score on *test* pairs: a per-pixel colour map
    # already beats doing nothing by far; adding the 3x3 neighbourhood (the sharpening)
    # does better still. So a local translator (a conv net) can learn the task.
    train_a, train_b = ground_truth_pairs(12, size=32, split="train")
    test_a, test_b = ground_truth_pairs(12, size=32, split="test")
    identity = l1(test_a, test_b).mean()
    colour = l1(_fit_and_apply(_colour_features, train_a, train_b, test_a), test_b).mean()
    local = l1(_fit_and_apply(_patch_features, train_a, train_b, test_a), test_b).mean()
    assert identity > 0.12
    assert colour < identity / 3
    assert local < 0.8 * colour
    local_psnr = psnr(_fit_and_apply(_patch_features, train_a, train_b, test_a), test_b).mean()
    assert local_psnr > psnr(test_a, test_b).mean() + 10


def test_bad_params_name_the_key():
    with pytest.raises(UnpairedError, match="data.params.split"):
        make_synthetic(split="val")
    with pytest.raises(UnpairedError, match="data.params.size"):
        make_synthetic(size=30)
    with pytest.raises(UnpairedError, match="data.params.n"):
        make_synthetic(n=0)


def test_registers_through_the_plugin_contract():
    registry = get_registry()
    if "synthetic" not in registry.names("dataset"):
        name = register_plugin(synthetic, name="test-synthetic")
    else:
        name = None
    try:
        ds = get_registry().create("dataset", "synthetic", size=32, n=3, split="test")
        assert torch.equal(ds[0]["B"], a_to_b(ds[0]["A"]))
    finally:
        if name:
            unregister_plugin(name)


# --------------------------------------------------------------------------- thin structures
from unpaired.plugins.synthetic import LINE_WIDTHS, STRUCTURES, structure_masks  # noqa: E402


def _runs(mask, dim):
    """For each pixel of a bool (H, W) mask, the length of the run of mask pixels through it
    along ``dim`` (0: vertical, 1: horizontal); 0 outside the mask."""
    m = (mask if dim == 1 else mask.T).numpy()
    out = np.zeros(m.shape, dtype=np.int64)
    for r, row in enumerate(m):
        edges = np.diff(np.concatenate([[0], row.astype(np.int8), [0]]))
        for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            out[r, start:end] = end - start
    out = torch.from_numpy(out)
    return out if dim == 1 else out.T


def _corners(mask):
    """Pixels of the mask with no mask pixel above or to the left: one per axis-aligned rectangle."""
    up = torch.zeros_like(mask)
    up[1:] = mask[:-1]
    left = torch.zeros_like(mask)
    left[:, 1:] = mask[:, :-1]
    return int((mask & ~up & ~left).sum())


def test_structures_off_by_default_and_the_scene_underneath_unchanged():
    plain_a, plain_b = ground_truth_pairs(6, size=32)
    assert torch.equal(make_synthetic(size=32, n=6, split="test")[2]["A"], plain_a[2])
    a, b = ground_truth_pairs(6, size=32, structures=True)
    masks = structure_masks(6, size=32)
    drawn = masks["small"] | torch.stack([masks[f"line_{w}px"] for w in LINE_WIDTHS]).any(0)
    # the structures change exactly the pixels their masks claim, and nothing else
    assert torch.equal((a != plain_a).any(1), drawn)
    assert drawn.float().mean() > 0.03
    # without structures only the large shapes and the background have pixels
    plain = structure_masks(6, size=32, structures=False)
    assert all(not plain[k].any() for k in STRUCTURES if k not in ("background", "large"))
    assert torch.equal(plain["background"] | plain["large"], torch.ones(6, 32, 32, dtype=torch.bool))
    assert torch.equal(plain["large"] | drawn, masks["large"] | drawn)


def test_structures_are_deterministic_and_the_masks_partition_the_image():
    first, again = structure_masks(4, size=64, seed=1), structure_masks(4, size=64, seed=1)
    assert list(first) == list(STRUCTURES)
    assert all(torch.equal(first[k], again[k]) for k in STRUCTURES)
    other = structure_masks(4, size=64, seed=2)
    assert not torch.equal(first["line_1px"], other["line_1px"])
    total = sum(m.to(torch.int64) for m in first.values())
    assert torch.equal(total, torch.ones_like(total))  # every pixel in exactly one class
    ds = make_synthetic(size=64, n=4, split="test", seed=1, structures=True)
    a, b = ground_truth_pairs(4, size=64, seed=1, structures=True)
    for i in range(4):
        item, per_item = ds[i], ds.masks(i)
        assert torch.equal(item["A"], a[i]) and torch.equal(item["B"], a_to_b(item["A"]))
        assert all(torch.equal(per_item[k], first[k][i]) for k in STRUCTURES)
        assert all(first[k][i].any() for k in STRUCTURES), "every class present in every scene"


@pytest.mark.parametrize("size", [32, 64])
def test_lines_have_their_stated_widths_and_objects_are_small(size):
    n = 6
    masks = structure_masks(n, size=size, split="train")
    per_width = max(1, size // 32)
    for i in range(n):
        for w in LINE_WIDTHS:
            m = masks[f"line_{w}px"][i]
            across = torch.minimum(_runs(m, 0), _runs(m, 1))[m]
            along = torch.maximum(_runs(m, 0), _runs(m, 1))[m]
            assert torch.all(across == w), (i, w, across.unique())
            assert torch.all(along >= round(0.3 * size)) and torch.all(along <= round(0.7 * size))
            assert _corners(m) == per_width  # separate straight lines, none touching another
        small = masks["small"][i]
        assert small.any()
        assert torch.all(torch.maximum(_runs(small, 0), _runs(small, 1))[small] <= 5)
        assert torch.all(torch.minimum(_runs(small, 0), _runs(small, 1))[small] >= 2)


def test_structures_stand_out_and_large_regions_are_the_vivid_shapes():
    a, _ = ground_truth_pairs(8, size=64, structures=True)
    masks = structure_masks(8, size=64)
    rgb = (a + 1) / 2
    grey = rgb.mean(1)
    pad = torch.nn.functional.pad(grey[:, None], (1, 1, 1, 1), mode="replicate")
    ring = torch.nn.functional.avg_pool2d(pad, 3, stride=1)[:, 0]  # 3x3 mean around each pixel
    for w in (1, 2):  # thin lines differ from their 3x3 neighbourhood by far more than the grain
        m = masks[f"line_{w}px"]
        assert (grey - ring)[m].abs().mean() > 0.1
    saturation = (rgb.amax(1) - rgb.amin(1)) / rgb.amax(1).clamp(min=1e-3)
    for i in range(8):
        assert saturation[i][masks["large"][i]].mean() > saturation[i][masks["background"][i]].mean() + 0.1


def test_train_items_carry_structures_on_both_sides():
    torch.manual_seed(0)
    item = make_synthetic(size=32, n=4, split="train", structures=True)[1]
    torch.manual_seed(0)
    plain = make_synthetic(size=32, n=4, split="train")[1]
    assert (item["A"] != plain["A"]).any(0).float().mean() > 0.03
    assert (item["B"] != plain["B"]).any(0).float().mean() > 0.03


def test_bad_structures_param_names_the_key():
    with pytest.raises(UnpairedError, match="data.params.structures"):
        make_synthetic(structures="yes")
