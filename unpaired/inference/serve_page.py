"""The page ``unpaired serve`` answers at ``/``: one HTML file, a little vanilla JavaScript,
nothing fetched from elsewhere. Pick, drop or paste an image and choose the direction (and
a kept step); each translation becomes a card, newest first, the last ``HISTORY`` kept: the
input and the translation side by side, a slider that blends the translation into the input,
and a download link. While the server works, the card shows a progress bar (timed from the
last translation's seconds per megapixel) and the seconds spent. It asks the server
``GET /info`` for the run's directions and steps and ``POST /translate`` for each translation.

The layout is the normal flow (flex and grid, no absolutely positioned boxes), so no control
covers another at any width; the newest card's elements carry the ids ``input``, ``output``,
``blend`` and ``download``.
"""

HISTORY = 4

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>unpaired: translate an image</title>
<style>
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f4f4f2;
       color: #1d1d1f; }
main { max-width: 1280px; margin: 0 auto; padding: 16px clamp(12px, 3vw, 28px) 40px; }
h1 { font-size: 22px; margin: 4px 0 2px; }
.meta { color: #555; margin: 0 0 14px; overflow-wrap: anywhere; }
.panel { display: flex; flex-direction: column; gap: 12px; background: #fff; border: 1px solid #ddd;
         border-radius: 10px; padding: 14px; }
.controls { display: flex; flex-wrap: wrap; gap: 10px 20px; align-items: center; }
.controls label { display: flex; gap: 8px; align-items: center; }
select { font: inherit; padding: 4px 6px; border-radius: 6px; border: 1px solid #bbb; background: #fff; }
#drop { display: flex; flex-direction: column; align-items: center; justify-content: center; gap: 4px;
        min-height: 120px; padding: 20px; border: 2px dashed #aaa; border-radius: 10px; background: #fafafa;
        text-align: center; cursor: pointer; }
#drop strong { font-size: 17px; } #drop span { color: #666; }
#drop:hover, #drop.over { border-color: #1f77b4; background: #eef5fb; }
#status { margin: 0; } #status:empty { display: none; }
.error { color: #b00020; white-space: pre-wrap; overflow-wrap: anywhere; }
#results { display: flex; flex-direction: column; gap: 16px; margin-top: 16px; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 10px; padding: 12px 14px;
        display: flex; flex-direction: column; gap: 10px; }
.card-head { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; }
.card-head .name { font-weight: 600; overflow-wrap: anywhere; }
.card-head .what { color: #555; }
.card-head .download { margin-left: auto; }
.button { display: inline-block; padding: 5px 12px; border-radius: 6px; background: #1f77b4; color: #fff;
          text-decoration: none; white-space: nowrap; }
.button:hover { background: #17649a; }
.pair { display: grid; grid-template-columns: repeat(2, minmax(0, max-content)); gap: 12px; align-items: start; }
figure { margin: 0; min-width: 0; }
figcaption { font-size: 13px; color: #555; margin-top: 4px; }
.stack { display: grid; width: fit-content; max-width: 100%; }
.stack > * { grid-area: 1 / 1; }  /* one cell: the translation drawn over the input */
.pair img { display: block; max-width: 100%; max-height: 62vh; width: auto; height: auto; border-radius: 4px; }
.pending { display: flex; flex-direction: column; justify-content: center; gap: 8px; padding: 12px;
           background: rgba(255, 255, 255, 0.85); color: #333; z-index: 1; }
.pending progress { width: 100%; } .pending.error { color: #b00020; }
.blend { display: flex; gap: 10px; align-items: center; color: #555; font-size: 13px; }
.blend input { flex: 1; min-width: 0; }
[hidden] { display: none !important; }
</style></head>
<body><main>
<h1>Translate an image</h1>
<p class="meta" id="run">loading the run...</p>
<section class="panel">
  <div class="controls">
    <label>direction <select id="direction"></select></label>
    <label id="step-label" hidden>step <select id="step"></select></label>
  </div>
  <label id="drop" for="file"><strong>Drop an image here</strong>
    <span>or click to pick one, or paste one (Ctrl+V)</span>
    <input id="file" type="file" accept="image/*" hidden></label>
  <p id="status" role="status"></p>
</section>
<section id="results" aria-label="translations, newest first"></section>
</main>
<template id="card">
<article class="card">
  <div class="card-head"><span class="name"></span><span class="what"></span>
    <a class="button download" hidden>download PNG</a></div>
  <div class="pair">
    <figure><img class="input" alt="input"><figcaption>input</figcaption></figure>
    <figure><div class="stack"><img class="under" alt=""><img class="output" alt="translation" hidden>
      <div class="pending"><progress max="1"></progress><span class="elapsed">translating...</span></div></div>
      <figcaption class="output-caption">translation</figcaption>
      <label class="blend" hidden>input <input class="mix" type="range" min="0" max="100" value="100"
        aria-label="blend the translation into the input"> translation</label></figure>
  </div>
</article>
</template>
<script>
"use strict";
const HISTORY = __HISTORY__;
const $ = (id) => document.getElementById(id);
let picked = null, maxBytes = 0, secondsPerMegapixel = null;

function say(text, isError) { $("status").textContent = text; $("status").className = isError ? "error" : ""; }

async function init() {
  const info = await (await fetch("/info")).json();
  maxBytes = info.max_upload_bytes;
  $("run").textContent = `${info.run}: objective ${info.objective}, latest step ${info.latest_step}`;
  for (const d of info.directions) {
    $("direction").add(new Option(d === "a2b" ? "A \\u2192 B (a2b)" : "B \\u2192 A (b2a)", d));
  }
  for (const s of info.steps) {
    $("step").add(new Option(s === info.latest_step ? `${s} (latest)` : String(s), String(s), false, s === info.latest_step));
  }
  $("step-label").hidden = info.steps.length <= 1;
}

function pick(file) {
  if (!file) return;
  picked = file;
  translate();
}

function newCard() {
  for (const el of document.querySelectorAll("#results [id]")) el.removeAttribute("id");  // the newest has the ids
  const card = $("card").content.firstElementChild.cloneNode(true);
  const part = (name) => card.querySelector("." + name);
  part("input").id = "input"; part("output").id = "output"; part("mix").id = "blend"; part("download").id = "download";
  $("results").prepend(card);
  const cards = $("results").querySelectorAll(".card");
  for (const old of Array.from(cards).slice(HISTORY)) {
    for (const url of old.urls || []) URL.revokeObjectURL(url);
    old.remove();
  }
  return {card, part};
}

async function translate() {
  if (!picked) return;
  const file = picked;
  if (maxBytes && file.size > maxBytes) {
    say(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB; this server takes up to ${(maxBytes / 2 ** 20).toFixed(0)} MB`, true);
    return;
  }
  const direction = $("direction").value, step = $("step").value;
  const query = new URLSearchParams({direction});
  if (step) query.set("step", step);
  const {card, part} = newCard();
  const inputUrl = URL.createObjectURL(file);
  card.urls = [inputUrl];
  part("name").textContent = file.name;
  part("what").textContent = `${direction}, step ${step}`;
  for (const img of [part("input"), part("under")]) {
    img.addEventListener("error", () => { img.hidden = true; });  // a file the browser cannot show
    img.src = inputUrl;
  }
  say(`translating ${file.name} (${direction}, step ${step})...`);
  const started = performance.now(), bar = card.querySelector("progress");
  const tick = () => {
    const seconds = (performance.now() - started) / 1000, pixels = part("input").naturalWidth * part("input").naturalHeight;
    const expected = secondsPerMegapixel && pixels ? secondsPerMegapixel * pixels / 1e6 : null;
    if (expected) bar.value = Math.min(0.95, seconds / expected); else bar.removeAttribute("value");
    part("elapsed").textContent = `translating... ${seconds.toFixed(0)} s` + (expected ? ` of about ${Math.max(1, expected).toFixed(0)} s` : "");
  };
  tick();
  const timer = setInterval(tick, 250);
  let answer;
  try {
    answer = await fetch(`/translate?${query}`, {method: "POST", body: file,
                                                 headers: {"Content-Type": file.type || "application/octet-stream"}});
    if (!answer.ok) throw new Error(`${answer.status}: ${(await answer.text()).trim()}`);
    const url = URL.createObjectURL(await answer.blob());
    card.urls.push(url);
    const serverSeconds = parseFloat(answer.headers.get("X-Translate-Seconds"));
    const pixels = part("input").naturalWidth * part("input").naturalHeight;
    if (serverSeconds > 0 && pixels) secondsPerMegapixel = serverSeconds / (pixels / 1e6);
    const seconds = (performance.now() - started) / 1000;
    part("output").src = url;
    part("output").hidden = false;
    part("pending").remove();
    part("output-caption").textContent = `translation (${direction}, step ${step})`;
    part("what").textContent = `${direction}, step ${step}, ${seconds.toFixed(1)} s`;
    part("download").href = url;
    part("download").download = `${file.name.replace(/\\.[^.]*$/, "")}_${direction}_step${step}.png`;
    part("download").hidden = false;
    part("blend").hidden = false;
    part("mix").addEventListener("input", () => { part("output").style.opacity = part("mix").value / 100; });
    say(`translated ${file.name} in ${seconds.toFixed(1)} s`);
  } catch (err) {
    const text = answer === undefined ? `the server cannot be reached: ${err.message}` : err.message;
    part("pending").className = "pending error";
    part("pending").textContent = text;
    say(text, true);
  } finally {
    clearInterval(timer);
  }
}

$("file").addEventListener("change", () => { pick($("file").files[0]); $("file").value = ""; });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
// a file dropped anywhere is translated, never opened in place of the page
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); pick(e.dataTransfer.files[0]); });
document.addEventListener("paste", (e) => {
  const file = Array.from(e.clipboardData.files).find((f) => f.type.startsWith("image/"));
  if (file) pick(file);
});
$("direction").addEventListener("change", translate);
$("step").addEventListener("change", translate);
init().catch((err) => say(`cannot read the run: ${err}`, true));
</script>
</body></html>
""".replace("__HISTORY__", str(HISTORY))
