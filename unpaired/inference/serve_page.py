"""The page ``unpaired serve`` answers at ``/``: one HTML file, a little vanilla JavaScript,
nothing fetched from elsewhere. Pick or drop an image, choose the direction (and a kept
step), and the input and its translation appear side by side with a download link. It asks
the server ``GET /info`` for the run's directions and steps and ``POST /translate`` for the
translation."""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>unpaired: translate an image</title>
<style>
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #fafafa; color: #1d1d1f; }
main { max-width: 1300px; margin: 0 auto; padding: 16px 24px; }
h1 { font-size: 22px; margin: 8px 0; } .meta { color: #555; }
#drop { border: 2px dashed #999; border-radius: 8px; padding: 28px; text-align: center; background: #fff; cursor: pointer; }
#drop.over { border-color: #1f77b4; background: #eef5fb; }
.controls { display: flex; gap: 16px; align-items: center; margin: 12px 0; flex-wrap: wrap; }
.pair { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
.pair figure { margin: 0; } figcaption { font-size: 13px; color: #444; }
.pair img { max-width: 600px; max-height: 70vh; border: 1px solid #ddd; background: #fff; }
#status { min-height: 1.5em; } .error { color: #b00020; white-space: pre-wrap; } [hidden] { display: none !important; }
</style></head>
<body><main>
<h1>Translate an image</h1>
<p class="meta" id="run">loading the run...</p>
<label id="drop" for="file">Drop an image here, or click to pick one
  <input id="file" type="file" accept="image/*" hidden></label>
<div class="controls">
  <label>direction <select id="direction"></select></label>
  <label id="step-label" hidden>step <select id="step"></select></label>
  <a id="download" hidden>download the translation (PNG)</a>
</div>
<p id="status"></p>
<div class="pair">
  <figure id="input-figure" hidden><img id="input" alt="input"><figcaption id="input-caption">input</figcaption></figure>
  <figure id="output-figure" hidden><img id="output" alt="translation"><figcaption id="output-caption">translation</figcaption></figure>
</div>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let picked = null, maxBytes = 0, busy = 0;

function show(id, on) { $(id).hidden = !on; }
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
  show("step-label", info.steps.length > 1);
}

function pick(file) {
  if (!file) return;
  picked = file;
  $("input").src = URL.createObjectURL(file);
  $("input-caption").textContent = `input: ${file.name}`;
  show("input-figure", true);
  translate();
}

async function translate() {
  if (!picked) return;
  if (maxBytes && picked.size > maxBytes) {
    say(`${picked.name} is ${(picked.size / 2 ** 20).toFixed(1)} MB; this server takes up to ${(maxBytes / 2 ** 20).toFixed(0)} MB`, true);
    return;
  }
  const ticket = ++busy, direction = $("direction").value, step = $("step").value;
  const query = new URLSearchParams({direction});
  if (step) query.set("step", step);
  say(`translating ${picked.name} (${direction}, step ${step})...`);
  show("download", false);
  const started = performance.now();
  let answer;
  try {
    answer = await fetch(`/translate?${query}`, {method: "POST", body: picked,
                                                 headers: {"Content-Type": picked.type || "application/octet-stream"}});
  } catch (err) {
    if (ticket === busy) say(`the server cannot be reached: ${err}`, true);
    return;
  }
  if (ticket !== busy) return;  // a newer request replaced this one
  if (!answer.ok) {
    say(`${answer.status}: ${(await answer.text()).trim()}`, true);
    show("output-figure", false);
    return;
  }
  const url = URL.createObjectURL(await answer.blob());
  const name = `${picked.name.replace(/\\.[^.]*$/, "")}_${direction}_step${step}.png`;
  $("output").src = url;
  $("output-caption").textContent = `translation (${direction}, step ${step})`;
  $("download").href = url;
  $("download").download = name;
  show("output-figure", true);
  show("download", true);
  say(`translated in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

$("file").addEventListener("change", () => pick($("file").files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); pick(e.dataTransfer.files[0]); });
$("direction").addEventListener("change", translate);
$("step").addEventListener("change", translate);
init().catch((err) => say(`cannot read the run: ${err}`, true));
</script>
</body></html>
"""
