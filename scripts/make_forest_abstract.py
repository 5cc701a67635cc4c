#!/usr/bin/env python3
"""Regenerate the bundled sample data set ``data/forest_abstract/``.

Domain A (``trainA``/``testA``) are crops of real forest / woodland photos
shipped in Debian wallpaper packages; domain B (``trainB``/``testB``) are
abstract paintings: a few crops of a real painting (``Elephants`` from
``mate-backgrounds``) and many compositions painted procedurally by this
script (gestural brush work, Rothko-like colour fields, Kandinsky-like
compositions, Pollock-like drip paintings, stain paintings and squeegee
paintings).  The script also writes ``LICENSE.md`` with one attribution row per
image file.

This is a maintainer tool.  It is not run by the tests or by CI.

Fetching the sources (Debian bookworm; the packages are only unpacked, never
installed)::

    mkdir -p /tmp/fa-debs && cd /tmp/fa-debs
    apt-get update
    apt-get download lomiri-wallpapers-16.04 plasma-workspace-wallpapers mate-backgrounds
    dpkg-deb -x lomiri-wallpapers-16.04_*.deb     /tmp/fa-src/lomiri-wallpapers-16.04
    dpkg-deb -x plasma-workspace-wallpapers_*.deb /tmp/fa-src/plasma-workspace-wallpapers
    dpkg-deb -x mate-backgrounds_*.deb            /tmp/fa-src/mate-backgrounds

The versions used for the committed set were lomiri-wallpapers-16.04
20.04.0-2, plasma-workspace-wallpapers 4:5.27.5-2 and mate-backgrounds
1.26.0-1.  Licences were read from each package's
``usr/share/doc/<package>/copyright`` (and, for the Plasma wallpapers, from
each wallpaper's ``metadata.json``).

Then, from the repository root::

    python scripts/make_forest_abstract.py --sources /tmp/fa-src --seed 0

Only numpy and Pillow are needed.  Output: 320x320 RGB JPEG files, quality 85.
"""

from __future__ import annotations

import argparse
import colorsys
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 320          # side of every output image
QUALITY = 85        # JPEG quality
SS = 2              # supersampling factor for generated paintings
N_TRAIN = 48
N_TEST = 8


# --------------------------------------------------------------------------
# Domain A: forest photographs
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Photo:
    key: str            # short name used in output file names
    package: str
    version: str
    relpath: str        # path inside the unpacked package
    author: str
    licence: str
    licence_note: str
    train_region: tuple  # (x0, y0, x1, y1): train crops lie fully inside
    test_region: tuple   # (x0, y0, x1, y1): disjoint from train_region
    crop_range: tuple    # (min side, max side) of square crops, source pixels
    n_train: int
    n_test: int


LOMIRI = ("lomiri-wallpapers-16.04", "20.04.0-2")
PLASMA = ("plasma-workspace-wallpapers", "4:5.27.5-2")
MATE = ("mate-backgrounds", "1.26.0-1")

PLASMA_NOTE = ("debian/copyright: `Files: *` GPL-2+ (KDE Visual Design Group); "
               "upstream metadata.json: LGPLv3")

PHOTOS = [
    # Spruce forest with a footpath, 2560x1600.  Test crops come from the
    # right-most strip of the photo, which no training crop touches.
    Photo("path", *PLASMA, "usr/share/wallpapers/Path/contents/images/2560x1600.jpg",
          "Risto Saukonpää", "GPL-2+ (upstream: LGPL-3)", PLASMA_NOTE,
          train_region=(0, 0, 1980, 1600), test_region=(2020, 0, 2560, 1600),
          crop_range=(440, 1500), n_train=24, n_test=4),
    # Woodland stream, 3088x2056.  Train crops are large and kept in the upper
    # part so that each shows trees, not only rocks.  Test crops come from the
    # left strip (trees, ferns), which no training crop touches.
    Photo("stream", *LOMIRI, "usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg",
          "Aitzol Berasategi", "CC-BY-4.0", "debian/copyright: Files: 16.04/life_by_Aitzol_Berasategi.jpg",
          train_region=(760, 0, 3088, 1750), test_region=(0, 0, 720, 2056),
          crop_range=(900, 1700), n_train=16, n_test=3),
    # Autumn larch forest below a mountain ridge, 3088x2056.  Train crops from
    # the larch band on the left, test crop from the trees on the right.
    Photo("larch", *LOMIRI, "usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg",
          "Aitzol Berasategi", "CC-BY-4.0", "debian/copyright: Files: 16.04/aitzgorri_by_Aitzol_Berasategi.jpg",
          train_region=(0, 430, 2050, 1420), test_region=(2150, 780, 3088, 1560),
          crop_range=(520, 900), n_train=8, n_test=1),
]

# A real abstract painting, used for a few domain-B images.
ELEPHANTS = Photo("elephants", *MATE, "usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg",
                  "Wyng Stancikaite", "GPL-2+", "debian/copyright: Files: abstract/Elephants*.jpg",
                  train_region=(0, 0, 4500, 3172), test_region=(4600, 0, 5640, 3172),
                  crop_range=(900, 1700), n_train=4, n_test=1)


def _overlap(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / min(area(a), area(b))


def sample_crops(rng, region, crop_range, n, max_overlap=0.55):
    """n square boxes inside region; any two share < max_overlap of the smaller."""
    x0, y0, x1, y1 = region
    lo, hi = crop_range
    hi = min(hi, x1 - x0, y1 - y0)
    lo = min(lo, hi)
    boxes = []
    tries = 0
    while len(boxes) < n:
        tries += 1
        limit = max_overlap if tries < 5000 else 0.85
        s = int(rng.uniform(lo, hi))
        bx = int(rng.uniform(x0, x1 - s + 1))
        by = int(rng.uniform(y0, y1 - s + 1))
        box = (bx, by, bx + s, by + s)
        if all(_overlap(box, b) < limit for b in boxes):
            boxes.append(box)
    return boxes


def crop_resize(img, box):
    return img.crop(box).resize((SIZE, SIZE), Image.LANCZOS)


# --------------------------------------------------------------------------
# Domain B: procedural abstract paintings
# --------------------------------------------------------------------------

CURATED_PALETTES = [
    # (ground, colours...) as hex strings
    ["#efe6d2", "#1d1d1b", "#c8322b", "#2456a4", "#f2c230", "#3c8d5a"],   # primaries on cream
    ["#5b1a18", "#8c2320", "#d0532a", "#e89a3c", "#3a0e12", "#b33a2e"],   # Rothko reds
    ["#13243a", "#1f4e79", "#4f8cc9", "#a7c7e7", "#e8e1cf", "#0b1420"],   # blues
    ["#d9cbb0", "#2b2b2b", "#8a6d3b", "#f4efe4", "#9c3d2a", "#566b4d"],   # earth / Pollock
    ["#f3e9dc", "#e07a5f", "#3d405b", "#81b29a", "#f2cc8f", "#6d597a"],   # muted modern
    ["#1a1423", "#372549", "#774c60", "#b75d69", "#eacdc2", "#f4a259"],   # dusk
    ["#f6f1e7", "#ff595e", "#ffca3a", "#8ac926", "#1982c4", "#6a4c93"],   # bright
    ["#2d3a2e", "#6b8f71", "#d9c5a0", "#a44a3f", "#f2e3bc", "#1b1b1e"],   # sage / rust
    ["#fbf5e6", "#0d3b66", "#f95738", "#ee964b", "#f4d35e", "#202020"],   # poster
    ["#3b0d2e", "#a4133c", "#ff4d6d", "#ffb3c1", "#590d22", "#fff0f3"],   # crimson pinks
    ["#0f3d3e", "#128277", "#e2dcc8", "#f1ac20", "#cd5d35", "#100f0f"],   # teal / amber
    ["#e9e4d8", "#7d7d7d", "#3a3a3a", "#b9b1a3", "#151515", "#c2412d"],   # greys + red
]


def hex2rgb(h):
    h = h.lstrip("#")
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.float32)


def random_palette(rng):
    """Either a curated palette or a generated colour harmony; ground first."""
    if rng.random() < 0.6:
        pal = [hex2rgb(c) for c in CURATED_PALETTES[rng.integers(len(CURATED_PALETTES))]]
        ground, cols = pal[0], pal[1:]
        rng.shuffle(cols)
        return ground, cols
    base = rng.random()
    scheme = rng.choice(["analogous", "complementary", "triadic", "split"])
    offs = {"analogous": [0, 0.06, -0.06, 0.12, -0.1],
            "complementary": [0, 0.5, 0.04, 0.54, -0.03],
            "triadic": [0, 1 / 3, 2 / 3, 0.05, 0.38],
            "split": [0, 0.42, 0.58, 0.03, 0.5]}[scheme]
    cols = []
    for o in offs:
        h = (base + o + rng.normal(0, 0.02)) % 1
        s = float(np.clip(rng.uniform(0.3, 0.85), 0, 1))
        v = float(np.clip(rng.uniform(0.25, 0.95), 0, 1))
        cols.append(np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32) * 255)
    cols.append(np.array([20, 18, 16], np.float32) if rng.random() < 0.5
                else np.array([240, 234, 220], np.float32))
    if rng.random() < 0.5:
        ground = np.array(colorsys.hsv_to_rgb(base, rng.uniform(0.05, 0.25),
                                              rng.uniform(0.8, 0.95)), np.float32) * 255
    else:
        ground = np.array(colorsys.hsv_to_rgb((base + 0.5) % 1, rng.uniform(0.3, 0.8),
                                              rng.uniform(0.15, 0.45)), np.float32) * 255
    rng.shuffle(cols)
    return ground, cols


def smooth_noise(rng, h, w, cells_y, cells_x):
    """Value noise in [0, 1] with about cells_y x cells_x features."""
    g = rng.random((max(2, int(cells_y)) + 1, max(2, int(cells_x)) + 1)).astype(np.float32)
    im = Image.fromarray(g, mode="F").resize((w, h), Image.BICUBIC)
    a = np.asarray(im, dtype=np.float32)
    return np.clip(a, 0, 1)


def fractal_noise(rng, h, w, base=3, octaves=5):
    acc = np.zeros((h, w), np.float32)
    amp, tot = 1.0, 0.0
    for o in range(octaves):
        c = base * 2 ** o
        acc += amp * smooth_noise(rng, h, w, c, c)
        tot += amp
        amp *= 0.5
    return acc / tot


def jitter(rng, col, amount=18.0):
    return tuple(int(v) for v in np.clip(col + rng.normal(0, amount, 3), 0, 255))


def wash_ground(rng, h, w, ground):
    """A ground colour applied unevenly, like a thin first coat."""
    n = fractal_noise(rng, h, w, base=2, octaves=4)[..., None]
    tint = ground + rng.normal(0, 18, 3)
    img = ground * (0.88 + 0.24 * n) + (tint - ground) * (n > 0.55)
    return np.clip(img, 0, 255)


def stroke_path(rng, x, y, angle, length, curve, steps=10):
    pts = []
    for i in range(steps + 1):
        pts.append((x, y))
        angle += curve / steps + rng.normal(0, 0.04)
        x += math.cos(angle) * length / steps
        y += math.sin(angle) * length / steps
    return pts


def bristle_stroke(draw, rng, pts, width, col, dry=0.25, col_jit=14.0):
    """A brush stroke made of parallel bristle lines with colour jitter and
    ragged ends (dry brush)."""
    pts = np.asarray(pts, np.float32)
    d = np.gradient(pts, axis=0)
    nrm = np.stack([-d[:, 1], d[:, 0]], 1)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-6
    n_br = max(3, int(width / 2.2))
    base = np.asarray(col, np.float32)
    taper = np.sin(np.linspace(0.15, math.pi - 0.15, len(pts)))[:, None] ** 0.35
    for k in range(n_br):
        off = (k / (n_br - 1) - 0.5) * width
        line = pts + nrm * off * taper
        m = len(line)
        a = int(rng.integers(0, max(1, int(m * dry)) + 1))
        b = m - int(rng.integers(0, max(1, int(m * dry)) + 1))
        if b - a < 2:
            continue
        c = jitter(rng, base, col_jit)
        seg = [tuple(p) for p in line[a:b]]
        draw.line(seg, fill=c, width=int(rng.integers(2, 5)), joint="curve")


def paint_strokes(img, rng, cols, n, size_range, field=None, len_range=(1.5, 5.0),
                  region=None, dry=0.25):
    """Many bristle strokes on an RGB PIL image; directions follow field."""
    w, h = img.size
    draw = ImageDraw.Draw(img)
    for _ in range(n):
        if region is None:
            x, y = rng.uniform(-0.05 * w, 1.05 * w), rng.uniform(-0.05 * h, 1.05 * h)
        else:
            x0, y0, x1, y1 = region
            x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        width = rng.uniform(*size_range)
        if field is not None:
            fy = int(np.clip(y, 0, h - 1) * field.shape[0] / h)
            fx = int(np.clip(x, 0, w - 1) * field.shape[1] / w)
            ang = field[fy, fx] + rng.normal(0, 0.25)
        else:
            ang = rng.uniform(0, 2 * math.pi)
        length = width * rng.uniform(*len_range)
        col = cols[int(rng.integers(len(cols)))]
        pts = stroke_path(rng, x, y, ang, length, rng.normal(0, 0.6))
        bristle_stroke(draw, rng, pts, width, col, dry=dry)
    return img


def flow_field(rng, h, w, turbulence=1.0):
    n = smooth_noise(rng, h // 8, w // 8, 3, 3)
    return (n * 2 * math.pi * turbulence + rng.uniform(0, 2 * math.pi)).astype(np.float32)


def finish(rng, arr):
    """Canvas weave, grain, slight softening, downsample to SIZE."""
    h, w = arr.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(3.0, 4.5)
    weave = (np.sin(xx * 2 * math.pi / period) * np.sin(yy * 2 * math.pi / period))
    grain = rng.normal(0, 1, (h, w)).astype(np.float32)
    tex = 1 + 0.035 * weave[..., None] + 0.025 * grain[..., None]
    # gentle relief: lighter/darker where the paint was thicker
    relief = fractal_noise(rng, h, w, base=16, octaves=3)[..., None]
    tex = tex * (0.96 + 0.08 * relief)
    arr = np.clip(arr * tex, 0, 255).astype(np.uint8)
    im = Image.fromarray(arr, "RGB").filter(ImageFilter.GaussianBlur(0.6))
    return im.resize((SIZE, SIZE), Image.LANCZOS)


def style_gestural(rng, n):
    """Abstract-expressionist brush work following a flow field."""
    H = W = SIZE * SS
    ground, cols = random_palette(rng)
    img = Image.fromarray(wash_ground(rng, H, W, ground).astype(np.uint8))
    field = flow_field(rng, H, W, rng.uniform(0.5, 1.5))
    k = rng.uniform(0.7, 1.3)
    paint_strokes(img, rng, cols, int(60 * k), (60, 120), field, (1.2, 3.0))
    paint_strokes(img, rng, cols, int(160 * k), (25, 60), field, (1.5, 4.0))
    paint_strokes(img, rng, cols, int(220 * k), (8, 24), field, (2.0, 6.0), dry=0.4)
    return finish(rng, np.asarray(img, np.float32))


def soft_rect_mask(rng, H, W, box, feather):
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    nx = (fractal_noise(rng, H, W, base=6, octaves=4) - 0.5) * feather * 2.5
    ny = (fractal_noise(rng, H, W, base=6, octaves=4) - 0.5) * feather * 2.5
    dx = np.minimum(xx - x0 + nx, x1 - xx + nx)
    dy = np.minimum(yy - y0 + ny, y1 - yy + ny)
    d = np.minimum(dx, dy)
    return np.clip(d / feather + 0.5, 0, 1)


def layer_from_strokes(rng, H, W, col, n, size_range, horizontal=True):
    """A full layer of broad strokes in shades of one colour."""
    base = np.clip(col + rng.normal(0, 10, 3), 0, 255)
    img = Image.new("RGB", (W, H), tuple(int(v) for v in base))
    field = np.full((4, 4), 0.0 if horizontal else rng.uniform(0, math.pi), np.float32)
    shades = [np.clip(col * f, 0, 255) for f in (0.85, 0.93, 1.0, 1.07, 1.15)]
    paint_strokes(img, rng, shades, n, size_range, field, (2.0, 6.0), dry=0.35)
    return np.asarray(img, np.float32)


def style_rothko(rng, n):
    """Stacked soft-edged colour fields on a coloured ground."""
    H = W = SIZE * SS
    ground, cols = random_palette(rng)
    canvas = layer_from_strokes(rng, H, W, ground, 260, (40, 110))
    k = int(rng.integers(2, 4))
    margin = rng.uniform(0.06, 0.12) * W
    gap = rng.uniform(0.03, 0.07) * H
    heights = rng.dirichlet(np.ones(k) * 3) * (H - 2 * margin - (k - 1) * gap)
    y = margin
    for i in range(k):
        col = cols[i % len(cols)]
        box = (margin, y, W - margin, y + heights[i])
        mask = soft_rect_mask(rng, H, W, box, feather=rng.uniform(8, 22))
        layer = layer_from_strokes(rng, H, W, col, 220, (30, 90))
        alpha = mask[..., None] * rng.uniform(0.85, 0.97)
        canvas = canvas * (1 - alpha) + layer * alpha
        y += heights[i] + gap
    return finish(rng, canvas)


def paint_shape(canvas, rng, mask_img, col, size_range=(10, 26)):
    """Fill the shape (L mask) with bristle strokes of col, composited on canvas."""
    H, W = canvas.shape[:2]
    bbox = mask_img.getbbox()
    if bbox is None:
        return canvas
    layer = Image.new("RGB", (W, H), tuple(int(v) for v in col))
    area = (bbox[2] - bbox[0]) * (bbox[3] - bbox[1])
    n = int(np.clip(area / 900, 10, 260))
    shades = [np.clip(col * f + rng.normal(0, 6, 3), 0, 255) for f in (0.85, 0.95, 1.05, 1.15)]
    field = np.full((4, 4), rng.uniform(0, math.pi), np.float32)
    paint_strokes(layer, rng, shades, n, size_range, field, (1.5, 4.0), region=bbox)
    m = np.asarray(mask_img.filter(ImageFilter.GaussianBlur(1.5)), np.float32)[..., None] / 255
    m = m * np.clip(0.8 + 0.4 * fractal_noise(rng, H, W, 8, 3)[..., None], 0, 1)
    return canvas * (1 - m) + np.asarray(layer, np.float32) * m


def wobbly_polygon(rng, pts, amount):
    return [(x + rng.normal(0, amount), y + rng.normal(0, amount)) for x, y in pts]


def style_kandinsky(rng, n):
    """Circles, bars, triangles, arcs and lines, all painted with strokes."""
    H = W = SIZE * SS
    ground, cols = random_palette(rng)
    if rng.random() < 0.7:   # Kandinsky grounds are mostly light
        ground = np.array([rng.uniform(215, 245), rng.uniform(205, 235), rng.uniform(180, 215)],
                          np.float32)
    canvas = layer_from_strokes(rng, H, W, ground, 200, (40, 100), horizontal=False)
    # a few big translucent washes
    for _ in range(int(rng.integers(1, 4))):
        m = Image.new("L", (W, H), 0)
        d = ImageDraw.Draw(m)
        cx, cy, r = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(0.2, 0.45) * W
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=110)
        m = m.filter(ImageFilter.GaussianBlur(rng.uniform(20, 50)))
        a = np.asarray(m, np.float32)[..., None] / 255
        canvas = canvas * (1 - a) + cols[int(rng.integers(len(cols)))] * a
    shapes = int(rng.integers(7, 14))
    for _ in range(shapes):
        m = Image.new("L", (W, H), 0)
        d = ImageDraw.Draw(m)
        kind = rng.choice(["circle", "circle", "rings", "triangle", "bar", "quad"])
        cx, cy = rng.uniform(0.1, 0.9) * W, rng.uniform(0.1, 0.9) * H
        col = cols[int(rng.integers(len(cols)))]
        if kind == "circle":
            r = rng.uniform(0.04, 0.18) * W
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        elif kind == "rings":
            r = rng.uniform(0.08, 0.2) * W
            canvas = paint_shape(canvas, rng, _ellipse_mask(W, H, cx, cy, r), col)
            for f in (0.72, 0.45, 0.22):
                c2 = cols[int(rng.integers(len(cols)))]
                canvas = paint_shape(canvas, rng, _ellipse_mask(W, H, cx, cy, r * f), c2, (6, 16))
            continue
        elif kind == "triangle":
            r = rng.uniform(0.08, 0.25) * W
            a0 = rng.uniform(0, 2 * math.pi)
            pts = [(cx + r * math.cos(a0 + i * 2.1 + rng.normal(0, 0.2)),
                    cy + r * math.sin(a0 + i * 2.1 + rng.normal(0, 0.2))) for i in range(3)]
            d.polygon(wobbly_polygon(rng, pts, 3), fill=255)
        elif kind == "bar":
            L, t, a0 = rng.uniform(0.2, 0.6) * W, rng.uniform(0.015, 0.05) * W, rng.uniform(0, math.pi)
            dx, dy = math.cos(a0), math.sin(a0)
            pts = [(cx - dx * L / 2 - dy * t, cy - dy * L / 2 + dx * t),
                   (cx + dx * L / 2 - dy * t, cy + dy * L / 2 + dx * t),
                   (cx + dx * L / 2 + dy * t, cy + dy * L / 2 - dx * t),
                   (cx - dx * L / 2 + dy * t, cy - dy * L / 2 - dx * t)]
            d.polygon(wobbly_polygon(rng, pts, 2), fill=255)
        else:
            r = rng.uniform(0.06, 0.16) * W
            pts = [(cx + r * math.cos(a), cy + r * math.sin(a))
                   for a in np.sort(rng.uniform(0, 2 * math.pi, 4))]
            d.polygon(wobbly_polygon(rng, pts, 3), fill=255)
        canvas = paint_shape(canvas, rng, m, col)
    # thin dark lines, arcs and a small grid
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    dark = tuple(int(v) for v in np.clip(rng.normal(28, 8, 3), 0, 255))
    for _ in range(int(rng.integers(4, 10))):
        if rng.random() < 0.6:
            x0, y0 = rng.uniform(0, W), rng.uniform(0, H)
            a0 = rng.uniform(0, 2 * math.pi)
            L = rng.uniform(0.2, 0.8) * W
            pts = stroke_path(rng, x0, y0, a0, L, rng.normal(0, 0.15), steps=12)
            bristle_stroke(d, rng, pts, rng.uniform(3, 10), dark, dry=0.1, col_jit=6)
        else:
            r = rng.uniform(0.1, 0.35) * W
            cx, cy = rng.uniform(0, W), rng.uniform(0, H)
            a0 = rng.uniform(0, 2 * math.pi)
            pts = [(cx + r * math.cos(a0 + t), cy + r * math.sin(a0 + t))
                   for t in np.linspace(0, rng.uniform(0.8, 2.5), 24)]
            bristle_stroke(d, rng, pts, rng.uniform(3, 8), dark, dry=0.1, col_jit=6)
    if rng.random() < 0.6:
        gx, gy, cell = rng.uniform(0.1, 0.7) * W, rng.uniform(0.1, 0.7) * H, rng.uniform(14, 26)
        for i in range(int(rng.integers(3, 6))):
            for j in range(int(rng.integers(2, 5))):
                c = jitter(rng, cols[int(rng.integers(len(cols)))], 10)
                d.rectangle((gx + i * cell + 2, gy + j * cell + 2, gx + (i + 1) * cell - 2,
                             gy + (j + 1) * cell - 2), fill=c)
    return finish(rng, np.asarray(img, np.float32))


def _ellipse_mask(W, H, cx, cy, r):
    m = Image.new("L", (W, H), 0)
    ImageDraw.Draw(m).ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    return m


def style_pollock(rng, n):
    """Drip painting: tangled poured lines and splatters over washes."""
    H = W = SIZE * SS
    ground, cols = random_palette(rng)
    if rng.random() < 0.5:
        ground = np.array([rng.uniform(190, 225), rng.uniform(175, 205), rng.uniform(140, 175)],
                          np.float32)
    canvas = wash_ground(rng, H, W, ground)
    img = Image.fromarray(canvas.astype(np.uint8))
    paint_strokes(img, rng, cols, int(rng.integers(20, 60)), (40, 90), None, (1.5, 3.5), dry=0.5)
    d = ImageDraw.Draw(img)
    order = list(range(len(cols)))
    rng.shuffle(order)
    for ci in order:
        col = cols[ci]
        for _ in range(int(rng.integers(6, 14))):
            x, y = rng.uniform(0, W), rng.uniform(0, H)
            a0 = rng.uniform(0, 2 * math.pi)
            turn = 0.0
            width = rng.uniform(1.5, 7)
            pts = [(x, y)]
            for _ in range(int(rng.integers(40, 160))):
                turn = 0.85 * turn + rng.normal(0, 0.18)
                a0 += turn
                step = rng.uniform(6, 16)
                x += math.cos(a0) * step
                y += math.sin(a0) * step
                pts.append((x, y))
            # poured line: width varies along the path, with pools
            for p, q in zip(pts[:-1], pts[1:]):
                wv = max(1, int(width * rng.uniform(0.4, 1.4)))
                d.line((p, q), fill=jitter(rng, col, 8), width=wv)
                if rng.random() < 0.03:
                    r = width * rng.uniform(0.8, 2.2)
                    d.ellipse((q[0] - r, q[1] - r, q[0] + r, q[1] + r), fill=jitter(rng, col, 8))
        for _ in range(int(rng.integers(60, 200))):  # splatter
            x, y = rng.uniform(0, W), rng.uniform(0, H)
            r = rng.exponential(2.2) + 0.6
            d.ellipse((x - r, y - r, x + r, y + r), fill=jitter(rng, col, 8))
    return finish(rng, np.asarray(img, np.float32))


def style_stain(rng, n):
    """Colour-field stain painting: translucent pools with darker rims."""
    H = W = SIZE * SS
    ground, cols = random_palette(rng)
    ground = np.array([rng.uniform(225, 245), rng.uniform(215, 238), rng.uniform(195, 225)],
                      np.float32)
    canvas = wash_ground(rng, H, W, ground)
    for _ in range(int(rng.integers(5, 10))):
        col = cols[int(rng.integers(len(cols)))]
        nz = fractal_noise(rng, H, W, base=int(rng.integers(2, 4)), octaves=5)
        thr = rng.uniform(0.52, 0.66)
        m = np.clip((nz - thr) * 30, 0, 1)
        if m.mean() < 0.01:
            continue
        blurred = np.asarray(Image.fromarray((m * 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(3)), np.float32) / 255
        rim = np.clip(m - blurred, 0, 1) * 2.2      # pigment gathers at the edge
        dens = rng.uniform(0.45, 0.8) * (0.75 + 0.5 * fractal_noise(rng, H, W, 10, 3))
        a = np.clip(m * dens + rim * 0.5, 0, 1)[..., None]
        # multiply-like glaze: translucent colour over what is there
        glaze = canvas * (col / 255.0)
        canvas = canvas * (1 - a) + glaze * a * 0.55 + col * a * 0.45
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    if rng.random() < 0.6:
        paint_strokes(img, rng, cols, int(rng.integers(5, 25)), (8, 30), None, (3, 8), dry=0.5)
    return finish(rng, np.asarray(img, np.float32))


def style_squeegee(rng, n):
    """Richter-like scraped layers: horizontal drags over brush work."""
    H = W = SIZE * SS
    ground, cols = random_palette(rng)
    img = Image.fromarray(wash_ground(rng, H, W, ground).astype(np.uint8))
    field = flow_field(rng, H, W, 1.0)
    paint_strokes(img, rng, cols, 140, (30, 80), field, (1.5, 3.5))
    under = np.asarray(img, np.float32)
    horizontal = rng.random() < 0.7
    for _ in range(int(rng.integers(1, 3))):
        # a vertical colour profile dragged sideways
        prof_n = smooth_noise(rng, H, 1, int(rng.integers(4, 10)), 1)[:, 0]
        idx = np.clip((prof_n * len(cols)).astype(int), 0, len(cols) - 1)
        prof = np.stack([cols[i] for i in idx]) * (0.85 + 0.3 * rng.random((H, 1)))
        # the drag wobbles: each column samples the profile at a shifted row
        off = (smooth_noise(rng, H, W, rng.uniform(2, 4), rng.uniform(4, 8)) - 0.5) * 60
        rows = np.clip(np.arange(H)[:, None] + off, 0, H - 1).astype(int)
        top = prof[rows]
        streak = smooth_noise(rng, H, W, H // 10, rng.uniform(3, 8))
        cover = smooth_noise(rng, H, W, rng.uniform(2, 5), rng.uniform(1, 3))
        m = np.clip((streak * 0.6 + cover * 0.6 - rng.uniform(0.45, 0.65)) * 6, 0, 1)[..., None]
        under = under * (1 - m) + top * m
    if not horizontal:
        under = np.ascontiguousarray(np.transpose(under, (1, 0, 2)))
    return finish(rng, under)


STYLES = [style_gestural, style_rothko, style_kandinsky, style_pollock, style_stain,
          style_squeegee]
STYLE_NOTES = {
    "gestural": "gestural brush strokes along a flow field",
    "rothko": "stacked soft-edged colour fields",
    "kandinsky": "painted circles, bars, triangles and lines",
    "pollock": "poured/dripped lines and splatter",
    "stain": "translucent stain / colour-field pools",
    "squeegee": "scraped squeegee layers over brush work",
}


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def save(img, path):
    img.convert("RGB").save(path, "JPEG", quality=QUALITY, optimize=True)


def photo_rows(rng, photo, src_root, out, rows, split_counts, name_prefix, domain):
    img = Image.open(src_root / photo.package / photo.relpath).convert("RGB")
    for split, region, n in (("train", photo.train_region, photo.n_train),
                             ("test", photo.test_region, photo.n_test)):
        for box in sample_crops(rng, region, photo.crop_range, n):
            split_counts[split] += 1
            fname = f"{name_prefix}_{photo.key}_{split_counts[split]:03d}.jpg"
            save(crop_resize(img, box), out / f"{split}{domain}" / fname)
            rows.append((f"{split}{domain}/{fname}", photo, box))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", type=Path, required=True,
                    help="folder holding the unpacked packages, one sub-folder per package name")
    ap.add_argument("--out", type=Path, default=Path("data/forest_abstract"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    out = args.out
    for sub in ("trainA", "testA", "trainB", "testB"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
        (out / sub).mkdir(parents=True)
    rng = np.random.default_rng(args.seed)

    rows_a, rows_b_real, rows_b_gen = [], [], []
    counts = {"train": 0, "test": 0}
    for photo in PHOTOS:
        photo_rows(rng, photo, args.sources, out, rows_a, counts, "forest", "A")
    assert counts == {"train": N_TRAIN, "test": N_TEST}, counts

    counts = {"train": 0, "test": 0}
    photo_rows(rng, ELEPHANTS, args.sources, out, rows_b_real, counts, "painting", "B")
    for split, total in (("train", N_TRAIN), ("test", N_TEST)):
        i = 0
        while counts[split] < total:
            style = STYLES[(i + (3 if split == "test" else 0)) % len(STYLES)]
            i += 1
            seed = int(rng.integers(2 ** 31))
            img = style(np.random.default_rng(seed), i)
            counts[split] += 1
            sname = style.__name__[len("style_"):]
            fname = f"painting_gen-{sname}_{counts[split]:03d}.jpg"
            save(img, out / f"{split}B" / fname)
            rows_b_gen.append((f"{split}B/{fname}", sname, seed))

    write_licence(out, rows_a, rows_b_real, rows_b_gen, args.seed)


def write_licence(out, rows_a, rows_b_real, rows_b_gen, seed):
    L = []
    L.append("# `forest_abstract` sample data set: sources and licences\n")
    L.append("A small unpaired data set for the forest-photo -> abstract-painting CycleGAN "
             "example, shipped so that no download is needed. Every image is a 320x320 RGB "
             "JPEG (quality 85). It was produced by `scripts/make_forest_abstract.py` "
             f"(seed {seed}); that script's docstring says how to fetch the source packages.\n")
    L.append("Domain A (`trainA`, `testA`) are square crops, scaled down, of real photographs. "
             "Test crops are taken from a region of each photograph that no training crop "
             "touches. Domain B (`trainB`, `testB`) are crops of one real painting "
             "(`painting_elephants_*`) and abstract paintings generated procedurally by the "
             "script (`painting_gen-*`).\n")
    L.append("Cropping and scaling are modifications of the original works. The licences "
             "below were read from each Debian package's `usr/share/doc/<package>/copyright` "
             "file. Each image keeps the licence of its source; the images are *not* covered "
             "by the repository's MIT licence, except the generated ones.\n")
    L.append("## Source works\n")
    L.append("| Key | Work (original file) | Author | Package (version) | Licence | Where the licence is stated |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    for p in PHOTOS + [ELEPHANTS]:
        L.append(f"| {p.key} | `{p.relpath.split('/')[-1] if p.package != PLASMA[0] else p.relpath.split('/')[3] + '/' + p.relpath.split('/')[-1]}` "
                 f"(`/{p.relpath}`) | {p.author} | {p.package} ({p.version}) | {p.licence} | {p.licence_note} |")
    L.append("")
    L.append("Licence texts: CC-BY-4.0 <https://creativecommons.org/licenses/by/4.0/>, "
             "GPL-2+ <https://www.gnu.org/licenses/old-licenses/gpl-2.0.html>, "
             "LGPL-3 <https://www.gnu.org/licenses/lgpl-3.0.html>. "
             "On Debian systems the GPL/LGPL texts are in `/usr/share/common-licenses/`.\n")
    L.append("Note on `path`: Debian's copyright file for plasma-workspace-wallpapers gives "
             "GPL-2+ for all its files (copyright 2014 KDE Visual Design Group), while the "
             "wallpaper's own upstream `metadata.json` names Risto Saukonpää as author and "
             "says LGPLv3. Both are free licences that allow redistribution of modified "
             "copies with this attribution; keep this file next to the images.\n")

    def table(title, rows):
        L.append(f"## {title}\n")
        L.append("| File | Source work | Author | Package (version) | Licence | Crop box in original (x0, y0, x1, y1) |")
        L.append("| --- | --- | --- | --- | --- | --- |")
        for f, p, box in rows:
            L.append(f"| `{f}` | {p.key}: `{p.relpath.split('/')[-1]}` | {p.author} | "
                     f"{p.package} ({p.version}) | {p.licence} | {box} |")
        L.append("")

    table("Domain A: forest photographs (every file)", rows_a)
    table("Domain B: crops of a real painting (every file)", rows_b_real)
    L.append("## Domain B: procedurally generated paintings (every file)\n")
    L.append("These images were generated from scratch by `scripts/make_forest_abstract.py` "
             "(no source image is used). They are part of this project and are dedicated "
             "to the public domain under CC0-1.0 "
             "<https://creativecommons.org/publicdomain/zero/1.0/>.\n")
    L.append("| File | Style | Per-image seed | Licence |")
    L.append("| --- | --- | --- | --- |")
    for f, s, sd in rows_b_gen:
        L.append(f"| `{f}` | {STYLE_NOTES[s]} | {sd} | CC0-1.0 (generated) |")
    L.append("")
    (out / "LICENSE.md").write_text("\n".join(L), encoding="utf-8")


if __name__ == "__main__":
    main()
