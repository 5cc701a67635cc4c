"""The page of unpaired serve in a real headless Chromium, laid out at a wide and a phone-sized
viewport: no visible control covers another, nothing is wider than the window, a progress bar
while the server translates, and each translation a card (input | translation, a blend slider,
a download link), the last few kept."""
import threading

import pytest
from PIL import Image

from browser import Browser, find_chromium
from unpaired.inference.serve import make_server
from unpaired.inference.serve_page import HISTORY

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")

# the visible boxes that must not overlap: text, controls, captions (images stack on purpose:
# the blend draws the translation over the input)
OVERLAPS = """(() => {
  const selector = "h1, #run, #drop, label, select, input:not([type=file]), a, button, progress, #status, "
                 + "figcaption, .card-head > span, .pending span";
  const shown = [...document.querySelectorAll(selector)].filter((e) => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden";
  });
  const name = (e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}${e.className ? "." + e.className : ""}`
                      + ` "${e.textContent.trim().slice(0, 30)}"`;
  const found = [];
  shown.forEach((a, i) => shown.slice(i + 1).forEach((b) => {
    if (a.contains(b) || b.contains(a)) return;
    const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
    const x = Math.min(p.right, q.right) - Math.max(p.left, q.left);
    const y = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
    if (x > 0.5 && y > 0.5) found.push(`${name(a)} and ${name(b)}`);
  }));
  return found;
})()"""


def choose(page, select_id, value):
    page.evaluate(f"(() => {{ const s = document.getElementById('{select_id}'); s.value = '{value}'; "
                  "s.dispatchEvent(new Event('change')); })()")


def cards_done(n):
    return (f"document.querySelectorAll('.card').length === {n} && "
            "[...document.querySelectorAll('.card')].every((c) => c.querySelector('.output').naturalWidth > 0)")


@pytest.mark.slow
def test_the_page_keeps_its_controls_apart_and_its_translations(kept_run, tmp_path):
    small = tmp_path / "forest.png"
    Image.open(sorted((kept_run.parent / "data" / "testA").iterdir())[0]).save(small)
    slow = tmp_path / "slow.png"  # 256 x 256 in 16-px tiles: the server works for seconds
    Image.open(small).resize((256, 256)).save(slow)
    server = make_server(kept_run, port=0, device="cpu", precision="fp32", tile=16)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Browser() as browser:
            for width, image in ((1280, slow), (420, small)):
                page = browser.open(server.url)
                page.set_viewport(width, 800)
                page.wait_until("document.getElementById('direction').options.length === 2")
                assert page.evaluate(OVERLAPS) == [], width
                page.set_files("#file", [image])
                if image == slow:  # while the server works: a progress bar and the seconds spent
                    page.wait_until("(() => { const p = document.querySelector('.card .pending'); "
                                    "return p && p.querySelector('progress').getBoundingClientRect().width > 0 && "
                                    "/translating\\.\\.\\. \\d+ s/.test(p.textContent); })()")
                    assert page.evaluate(OVERLAPS) == [], width
                page.wait_until(cards_done(1), timeout=120)
                choose(page, "direction", "b2a")  # a second translation: a second card, on top
                page.wait_until(cards_done(2), timeout=120)
                assert page.evaluate(OVERLAPS) == [], width
                assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing sticks out
                heads = page.evaluate("[...document.querySelectorAll('.card .what')].map((e) => e.textContent)")
                assert heads[0].startswith("b2a, step 4") and heads[1].startswith("a2b, step 4"), heads
                # each card: input | translation side by side, a blend slider and its own download
                stem = image.stem
                links = page.evaluate("[...document.querySelectorAll('.card a.download')].map((a) => "
                                      "[a.download, a.href.slice(0, 5), a.getBoundingClientRect().width > 0])")
                assert links == [[f"{stem}_b2a_step4.png", "blob:", True], [f"{stem}_a2b_step4.png", "blob:", True]]
                sides = page.evaluate("(() => { const r = (id) => document.getElementById(id).getBoundingClientRect(); "
                                      "return [r('input').right <= r('output').left, "
                                      "r('input').top === r('output').top, r('blend').width > 0]; })()")
                assert sides == [True, True, True], (width, sides)
                page.evaluate("(() => { const s = document.getElementById('blend'); s.value = '0'; "
                              "s.dispatchEvent(new Event('input')); })()")
                assert page.evaluate("getComputedStyle(document.getElementById('output')).opacity") == "0"
                assert page.errors() == []
            for direction in ("a2b", "b2a", "a2b"):  # more translations: the last HISTORY are kept
                choose(page, "direction", direction)
                page.wait_until(f"document.querySelector('.card .what').textContent.startsWith('{direction}') && "
                                "document.getElementById('output').naturalWidth > 0", timeout=60)
            page.wait_until(cards_done(HISTORY))
            assert page.evaluate(OVERLAPS) == []
            assert page.errors() == []
    finally:
        server.shutdown()
        thread.join(60)
        server.stop()
