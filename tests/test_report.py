"""unpaired report RUN_DIR -> RUN_DIR/report.html: self-contained, the right images, refreshed
by the run; rendered in a real headless browser."""
import base64
import io
import re
from html.parser import HTMLParser

import pytest
from PIL import Image

from browser import Browser, find_chromium
from helpers import mean_level_difference
from unpaired import Translator
from unpaired.cli import main
from unpaired.report.page import data_uri
from unpaired.report.svg import nice_ticks, smoothed
from unpaired.report.timeline import pick_steps


class Elements(HTMLParser):
    """Every element's attributes, by tag."""

    def __init__(self, html):
        super().__init__()
        self.found = {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.setdefault(tag, []).append(dict(attrs))


def images(html):
    """{alt: PIL image} of the page's <img> elements."""
    out = {}
    for attrs in Elements(html).found.get("img", []):
        head, _, data = attrs["src"].partition(",")
        out[attrs["alt"]] = Image.open(io.BytesIO(base64.b64decode(data)))
    return out


def as_embedded(image):
    """An image as the report embeds it (JPEG), decoded."""
    return Image.open(io.BytesIO(base64.b64decode(data_uri(image, "JPEG").partition(",")[2])))


def test_the_run_wrote_a_self_contained_report(kept_run):
    html = (kept_run / "report.html").read_text()
    elements = Elements(html).found
    # nothing is fetched: every src and href is inside the file
    links = [a.get("src") or a.get("href") for tag in elements.values() for a in tag if "src" in a or "href" in a]
    assert links and all(link.startswith("data:") for link in links), links
    assert "http://" not in html and "https://" not in html
    # the run, its device line and recipe
    assert "cpu fp32, 2 threads" in html and "keep_every: 2" in html
    # a chart per phase (raw and smoothed lines), the terms, the schedule, the evaluation
    assert "Losses per phase" in html and "phase g: loss_g" in html and "phase d: loss_d" in html
    assert html.count("<polyline") >= 2 * 2 + 9  # loss_g, loss_d raw + smoothed; cycle, idt, adv, d terms ...
    assert "Evaluation" in html and "kid_a2b" in html and "learning rate" in html
    # the timeline: 3 held-out images per direction at the input, step 2 and step 4; the final figure
    assert "<th>step 2</th>" in html and "<th>step 4</th>" in html
    shown = images(html)
    assert len([alt for alt in shown if re.search(r" (a2b|b2a) step \d+$", alt)]) == 2 * 3 * 2
    assert "figure.png" in shown and shown["figure.png"].width >= 3 * 256


def test_the_timeline_shows_each_steps_own_translation(kept_run):
    shown = images((kept_run / "report.html").read_text())
    name = next(alt for alt in shown if alt.endswith(" a2b input")).split(" a2b input")[0]
    source = Image.open(kept_run.parent / "data" / "testA" / name)
    at = {step: Translator.from_checkpoint(kept_run, step=step, precision="fp32")(source) for step in (2, 4)}
    for step in (2, 4):
        tile = shown[f"{name} a2b step {step}"]
        assert tile.size == source.size  # at the held-out image's own size (under 256 px)
        assert mean_level_difference(tile, as_embedded(at[step])) < 0.5  # the same JPEG, bar rounding
        other = as_embedded(at[6 - step])
        assert mean_level_difference(tile, other) > 1  # and not the other step's


def test_unpaired_report_rebuilds_it_from_the_run_directory(kept_run, capsys, monkeypatch, tmp_path):
    report = kept_run / "report.html"
    report.unlink()
    monkeypatch.chdir(tmp_path)  # the recipe's data paths are absolute here; report finds the run's files
    assert main(["report", str(kept_run), "--device", "cpu"]) == 0
    assert str(report) in capsys.readouterr().out.replace("\n", "")
    html = report.read_text()
    assert "<th>step 2</th>" in html and "<th>step 4</th>" in html and "cpu fp32, 2 threads" in html
    assert not list(kept_run.glob(".report.html.tmp*"))


def test_report_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "nothing does not exist" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a run directory" in " ".join(capsys.readouterr().err.split())


def test_charts_smooth_and_tick_sensibly():
    assert smoothed([3.0, 3.0, 3.0]) == pytest.approx([3.0, 3.0, 3.0])  # debiased: no ramp from zero
    assert smoothed([1.0, 5.0])[0] == 1.0
    assert nice_ticks(0, 1) == pytest.approx([0, 0.5, 1.0])  # steps of 1, 2 or 5 times a power of ten
    assert nice_ticks(0.013, 0.052) == pytest.approx([0.02, 0.03, 0.04, 0.05])
    assert nice_ticks(0, 10_000, 6) == pytest.approx([0, 2000, 4000, 6000, 8000, 10_000])
    chosen = pick_steps(range(250, 10_001, 250), 8)
    assert len(chosen) <= 8 and chosen[0] == 250 and chosen[-1] == 10_000
    # refreshes reuse the earlier choice: one step more keeps every step chosen before but the last
    assert set(pick_steps(range(250, 10_251, 250), 8)) >= set(chosen[:-1])


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_report_renders_in_a_browser(kept_run, tmp_path):
    with Browser() as browser:
        page = browser.open((kept_run / "report.html").as_uri())
        widths = page.evaluate("[...document.images].map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) >= 2 * 3 * 3 + 1 and all(w > 0 for w in widths), widths
        assert page.evaluate("document.querySelectorAll('svg polyline').length") >= 13
        assert page.evaluate("document.querySelector('h1').textContent") == "forest_abstract"
        assert page.errors() == []
        shot = page.screenshot(tmp_path / "report.png")
    image = Image.open(shot).convert("L")
    assert image.height > 1000 and image.getextrema()[0] < 64  # the page drew dark pixels: text, images, lines
