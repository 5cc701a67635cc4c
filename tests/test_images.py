"""Image loading and folder scanning on every odd and broken kind of file."""
from __future__ import annotations

import builtins
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unpaired.data import images
from unpaired.errors import UnpairedError
from unpaired.data.images import (
    IMAGE_EXTENSIONS, Scan, check_image, find_images, load_image, scan_folder, skipped_summary,
    usable_problem,
)

W, H = 48, 32  # every good image below is W x H as displayed


def _gradient_rgb() -> Image.Image:
    x = np.linspace(0, 255, W, dtype=np.uint8)[None, :].repeat(H, 0)
    y = np.linspace(0, 255, H, dtype=np.uint8)[:, None].repeat(W, 1)
    return Image.fromarray(np.stack([x, y, np.full_like(x, 90)], -1))


def _write_good(folder: Path) -> dict[str, Path]:
    """One file of each odd-but-valid kind; returns name -> path."""
    files = {}

    def put(rel: str, im: Image.Image, **save) -> None:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path, **save)
        files[rel] = path

    gray = np.linspace(0, 255, W * H).reshape(H, W).astype(np.uint8)
    put("gray.png", Image.fromarray(gray))
    palette = Image.new("P", (W, H), 1)
    palette.putpalette([0, 0, 0, 0, 200, 0] + [0] * (254 * 3))
    palette.paste(0, (0, 0, W // 2, H))  # left half uses index 0, the transparent one
    put("palette.png", palette, transparency=0)
    put("rgba.png", Image.new("RGBA", (W, H), (255, 0, 0, 128)))
    put("la.png", Image.new("LA", (W, H), (0, 0)))  # fully transparent black
    put("cmyk.jpg", Image.new("CMYK", (W, H), (0, 255, 255, 0)), quality=95)
    put("sixteen.png", Image.fromarray(_sixteen_bit()))
    put("sixteen.tif", Image.fromarray(_sixteen_bit()))
    put("float.tif", Image.fromarray(np.full((H, W), 0.5, dtype=np.float32)))
    rotated = Image.new("RGB", (H, W), (0, 0, 255))  # stored 32 wide, 48 high: displayed 48 x 32
    rotated.paste((255, 0, 0), (0, 0, 16, 16))  # red in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    put("exif_rotated.jpg", rotated, exif=exif, quality=95)
    put("UPPER.JPG", _gradient_rgb(), quality=95)
    put("Mixed.PnG", _gradient_rgb())
    put("nested/deeper/inner.png", _gradient_rgb())
    put("photo.webp", _gradient_rgb(), lossless=True)
    put("photo.bmp", _gradient_rgb())
    put("photo.tiff", _gradient_rgb())
    return files


def _sixteen_bit() -> np.ndarray:
    values = np.zeros((H, W), dtype=np.uint16)
    values[:, :16] = 65535
    values[:, 16:32] = 32768
    return values


def _write_bad(folder: Path) -> dict[str, Path]:
    """One file of each unusable kind (except permissions and bombs: see their tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    big = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    big.save(folder / "whole.jpg", quality=90)
    big.save(folder / "whole.png")
    files = {
        "empty.jpg": folder / "empty.jpg",
        "truncated.jpg": folder / "truncated.jpg",
        "truncated.png": folder / "truncated.png",
        "text.jpg": folder / "text.jpg",
    }
    files["empty.jpg"].write_bytes(b"")
    files["truncated.jpg"].write_bytes((folder / "whole.jpg").read_bytes()[:1500])
    files["truncated.png"].write_bytes((folder / "whole.png").read_bytes()[:3000])
    files["text.jpg"].write_text("this is a text file with an image extension\n")
    (folder / "whole.jpg").unlink()
    (folder / "whole.png").unlink()
    return files


@pytest.fixture
def good(tmp_path) -> dict[str, Path]:
    return _write_good(tmp_path / "good")


def test_extensions_cover_common_formats():
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"} <= IMAGE_EXTENSIONS


def test_find_images_recursive_sorted_case_insensitive(tmp_path, good):
    root = tmp_path / "good"
    (root / ".hidden.png").write_bytes(b"x")
    (root / ".cache").mkdir()
    _gradient_rgb().save(root / ".cache" / "thumb.png")
    (root / "notes.txt").write_text("not an image")
    (root / "labels.json").write_text("{}")
    found = find_images(root)
    assert sorted(found) == sorted(good.values())
    assert found == sorted(found, key=lambda p: p.relative_to(root).parts)
    assert root / "nested/deeper/inner.png" in found
    assert root / "UPPER.JPG" in found and root / "Mixed.PnG" in found


def test_find_images_missing_folder_names_it(tmp_path):
    with pytest.raises(UnpairedError, match="nope"):
        find_images(tmp_path / "nope")


def test_every_good_kind_loads_as_rgb_of_the_right_size(good):
    for name, path in good.items():
        im = load_image(path)
        assert im.mode == "RGB", name
        assert im.size == (W, H), name
        assert check_image(path) is None, name


def test_grayscale_is_replicated_into_rgb(good):
    arr = np.asarray(load_image(good["gray.png"])).astype(int)
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
    assert arr[0, 0, 0] == 0 and arr[-1, -1, 0] == 255


def test_transparency_is_composited_on_white(good):
    palette = np.asarray(load_image(good["palette.png"]))
    assert (palette[:, : W // 2] == 255).all()  # transparent half -> white
    assert tuple(palette[0, -1]) == (0, 200, 0)  # opaque half keeps its colour
    rgba = np.asarray(load_image(good["rgba.png"])).astype(int)
    assert tuple(rgba[0, 0]) == (255, 127, 127)  # half-transparent red over white
    la = np.asarray(load_image(good["la.png"]))
    assert (la == 255).all()  # fully transparent -> white, not black


def test_cmyk_jpeg_becomes_red(good):
    r, g, b = np.asarray(load_image(good["cmyk.jpg"])).astype(int)[H // 2, W // 2]
    assert r > 230 and g < 30 and b < 30


@pytest.mark.parametrize("name", ["sixteen.png", "sixteen.tif"])
def test_sixteen_bit_is_scaled_not_clipped(good, name):
    assert Image.open(good[name]).mode.startswith("I")  # really stored as 16-bit
    arr = np.asarray(load_image(good[name]))[..., 0].astype(int)
    assert (arr[:, :16] == 255).all()
    assert (np.abs(arr[:, 16:32] - 128) <= 1).all()
    assert (arr[:, 32:] == 0).all()


def test_float_image_in_unit_range_is_scaled(good):
    arr = np.asarray(load_image(good["float.tif"])).astype(int)
    assert (np.abs(arr - 128) <= 1).all()


def test_exif_orientation_is_applied(good):
    stored = Image.open(good["exif_rotated.jpg"])
    assert stored.size == (H, W)  # stored sideways
    im = load_image(good["exif_rotated.jpg"])
    assert im.size == (W, H)
    arr = np.asarray(im).astype(int)
    # 90 degrees clockwise moves the stored top-left corner to the top-right
    assert arr[4, -4, 0] > 200 and arr[4, -4, 2] < 60
    assert arr[4, 4, 2] > 200 and arr[4, 4, 0] < 60
    scan = scan_folder(good["exif_rotated.jpg"].parent)
    assert (scan.info[good["exif_rotated.jpg"]].width, scan.info[good["exif_rotated.jpg"]].height) == (W, H)


def test_single_channel_output(good):
    for name in ("gray.png", "rgba.png", "sixteen.png", "UPPER.JPG"):
        im = load_image(good[name], channels=1)
        assert im.mode == "L" and im.size == (W, H), name
    assert np.asarray(load_image(good["sixteen.png"], channels=1))[0, 0] == 255
    with pytest.raises(UnpairedError, match="channels"):
        load_image(good["gray.png"], channels=2)


def test_max_side_decodes_big_jpegs_at_reduced_size_but_not_below(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (1024, 768), (10, 120, 200)).save(path)
    small = load_image(path, max_side=100)
    assert small.size == (256, 192)  # 1/4 scale: 1/8 would make the short side 96 < 100
    assert load_image(path, max_side=700).size == (1024, 768)
    assert load_image(path).size == (1024, 768)
    assert tuple(np.asarray(small).astype(int)[50, 50]) == pytest.approx((10, 120, 200), abs=3)


def test_bad_files_are_named_with_reasons(tmp_path):
    bad = _write_bad(tmp_path / "bad")
    expected = {
        "empty.jpg": "empty file (0 bytes)",
        "truncated.jpg": "truncated",
        "truncated.png": "truncated",
        "text.jpg": "not an image",
    }
    for name, fragment in expected.items():
        reason = check_image(bad[name])
        assert reason is not None and fragment in reason, (name, reason)
        with pytest.raises(UnpairedError) as err:
            load_image(bad[name])
        assert str(bad[name]) in str(err.value) and fragment in str(err.value)


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    _gradient_rgb().save(path)
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the open fail as it would for a user
        real_open = builtins.open

        def denying_open(file, *args, **kwargs):
            if Path(file) == path:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(images, "open", denying_open, raising=False)
    try:
        reason = check_image(path)
        assert reason is not None and "permission denied" in reason
        with pytest.raises(UnpairedError, match="locked.png.*permission denied"):
            load_image(path)
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize("pixels_over_limit", [1.5, 3.0])  # warning range, then Pillow's hard error
def test_decompression_bomb_is_refused(tmp_path, monkeypatch, pixels_over_limit):
    path = tmp_path / "bomb.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", int(64 * 64 / pixels_over_limit))
    reason = check_image(path)
    assert reason is not None and "decompression bomb" in reason
    with pytest.raises(UnpairedError, match="bomb.png.*decompression bomb"):
        load_image(path)


def test_scan_folder_separates_good_and_bad(tmp_path, good):
    root = tmp_path / "good"
    bad = _write_bad(root / "broken")
    scan = scan_folder(root)
    assert scan.folder == root
    assert scan.good == [p for p in find_images(root) if p in set(good.values())]
    assert {p for p, _ in scan.bad} == set(bad.values())
    assert set(scan.info) == set(scan.good)
    assert scan.info[good["sixteen.png"]].mode == "I;16"
    summary = scan.summary()
    assert summary.startswith(f"Skipped 4 of {len(good) + 4} image files in {root}")
    for path, reason in scan.bad:
        assert f"{path.relative_to(root).as_posix()}: {reason}" in summary
    assert "\n" not in summary


def test_skipped_summary_empty_when_nothing_skipped():
    assert skipped_summary([]) == ""


def test_usable_problem_policy(tmp_path):
    folder = tmp_path / "A"
    empty = Scan(good=[], bad=[], folder=folder)
    assert f"domain A has no image files in {folder}" in usable_problem(empty, "A")
    all_bad = Scan(good=[], bad=[(folder / "x.jpg", "empty file")], folder=folder)
    assert "none of the 1 image files" in usable_problem(all_bad, "A")
    some_bad = Scan(good=[folder / "1.png", folder / "2.png"], bad=[(folder / "x.jpg", "empty file")], folder=folder)
    assert usable_problem(some_bad, "A") is None  # the default policy skips them
    assert "1 of 3 image files" in usable_problem(some_bad, "A", on_bad_file="error")
    assert usable_problem(Scan(good=[folder / "1.png"], bad=[], folder=folder), "A", on_bad_file="error") is None
    with pytest.raises(UnpairedError, match="on_bad_file='ignore'"):
        usable_problem(some_bad, "A", on_bad_file="ignore")


def test_find_images_follows_linked_folders_once(tmp_path):
    shared = tmp_path / "shared"
    _gradient_rgb().save(_mkdir(shared) / "s.png")
    root = _mkdir(tmp_path / "root")
    _gradient_rgb().save(root / "r.png")
    (root / "linked").symlink_to(shared, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    assert find_images(root) == [root / "linked" / "s.png", root / "r.png"]


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
