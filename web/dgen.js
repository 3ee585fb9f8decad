// The page's only script: loads dgen.wasm with plain WebAssembly.instantiate, copies the
// model, digits and seeds into the module's exported buffers, calls dgen_generate and
// draws the images it returns. No build step, no dependencies. See docs/WEB.md.
"use strict";

const SIDE = 28, PIXELS = SIDE * SIDE, GAP = 2, MAX_WIDTH = 960;
const $ = (id) => document.getElementById(id);

let wasm;            // the module's exports
let model;           // bytes of the model in use (a copy, to restore after a bad file)
let modelName;       // how the status line names it
let modelUrl = null; // ?model=URL, kept in the address while that model is in use

function bytes(ptr, len) { return new Uint8Array(wasm.memory.buffer, ptr, len); }
function message() {
  return new TextDecoder().decode(bytes(wasm.dgen_message(), wasm.dgen_message_len()));
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

// Puts `data` in the module's model buffer if the core accepts it; otherwise keeps the
// model in use and returns the core's error message.
function useModel(data, name) {
  const cap = wasm.dgen_model_capacity();
  if (data.length > cap) return `${name}: ${data.length} bytes, more than the ${cap} this page reads`;
  bytes(wasm.dgen_model_buffer(), data.length).set(data);
  if (wasm.dgen_check(data.length) !== 0) {
    const why = message();
    bytes(wasm.dgen_model_buffer(), model.length).set(model);
    return `${name}: ${why}`;
  }
  model = data;
  modelName = name;
  return null;
}

// Generates image i of digits[i] from seeds[i]; returns images, checksums and the time.
function generate(digits, seeds) {
  const n = digits.length;
  bytes(wasm.dgen_digits(), n).set(digits);
  new Uint32Array(wasm.memory.buffer, wasm.dgen_seeds(), n).set(seeds);
  if (wasm.dgen_generate(model.length, n) !== 0) throw new Error(`generation failed: ${message()}`);
  // Timing: the same request again (same inputs, same bytes), after that first run, which
  // may still execute in the browser's baseline compiler tier, until 50 ms have passed, so
  // that the coarse clock (0.1 ms in Chromium) still resolves one digit. Also bounded by
  // 250 digits: under a headless browser's virtual time the clock does not move.
  let runs = 0, ms = 0;
  const t0 = performance.now();
  do {
    if (wasm.dgen_generate(model.length, n) !== 0) throw new Error(`generation failed: ${message()}`);
    runs++;
    ms = performance.now() - t0;
  } while (ms < 50 && runs * n < 250);
  return {
    images: bytes(wasm.dgen_images(), n * PIXELS).slice(),
    sums: new Uint32Array(wasm.memory.buffer, wasm.dgen_checksums(), n).slice(),
    perDigit: ms / (runs * n),
    runs,
  };
}

// Draws the images `cols` per row, each pixel as a scale x scale square (crisp at any size).
function draw(images, count, cols) {
  const rows = Math.ceil(count / cols);
  const cell = SIDE + GAP;
  const scale = Math.max(1, Math.min(4, Math.floor(MAX_WIDTH / (cols * cell + GAP))));
  const w = (cols * cell + GAP) * scale, h = (rows * cell + GAP) * scale;
  const canvas = $("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const out = ctx.createImageData(w, h);
  out.data.fill(64);
  for (let k = 0; k < count; k++) {
    const x0 = (GAP + (k % cols) * cell) * scale, y0 = (GAP + Math.floor(k / cols) * cell) * scale;
    for (let y = 0; y < SIDE * scale; y++) {
      for (let x = 0; x < SIDE * scale; x++) {
        const v = images[k * PIXELS + Math.floor(y / scale) * SIDE + Math.floor(x / scale)];
        const o = ((y0 + y) * w + x0 + x) * 4;
        out.data[o] = out.data[o + 1] = out.data[o + 2] = v;
      }
    }
  }
  for (let o = 3; o < out.data.length; o += 4) out.data[o] = 255;
  ctx.putImageData(out, 0, 0);
}

function parseSeed(text) {
  if (!/^[0-9]{1,10}$/.test(text) || Number(text) > 0xffffffff) return null;
  return Number(text);
}

// Reads the form, generates, draws, writes the checksums and the address.
function render(keepError) {
  const grid = $("grid").checked;
  const text = $("digits").value.trim();
  const seed = parseSeed($("seed").value.trim());
  if (seed === null) return showError("seed: an integer in 0..4294967295");
  if (!grid && !/^[0-9]{1,100}$/.test(text)) return showError("digits: 1 to 100 digits 0-9, e.g. 3141592653");
  if (!keepError) showError("");

  // Row: image k is digits[k] from seed + k, as firmware-sim --seed does.
  // Grid: row d, column c is digit d from seed + c; seed 0 gives docs/samples-int8.png.
  const digits = [], seeds = [];
  if (grid) {
    for (let d = 0; d < 10; d++) for (let c = 0; c < 10; c++) { digits.push(d); seeds.push((seed + c) >>> 0); }
  } else {
    for (let k = 0; k < text.length; k++) { digits.push(text.charCodeAt(k) - 48); seeds.push((seed + k) >>> 0); }
  }
  const { images, sums, perDigit, runs } = generate(digits, seeds);
  draw(images, digits.length, grid ? 10 : Math.min(digits.length, 20));
  $("canvas").setAttribute("aria-label", grid
    ? `digits 0 to 9 in rows, seeds ${seed} to ${(seed + 9) >>> 0} in columns`
    : `the digits ${text}, from seed ${seed}`);
  $("checksums").textContent = digits
    .map((d, k) => `digit ${d} seed ${seeds[k]} fnv1a 0x${sums[k].toString(16).padStart(8, "0")}`)
    .join("\n") + "\n";
  const time = perDigit > 0
    ? `${(perDigit * 1000).toFixed(0)} us per digit (mean of ${runs} x ${digits.length} after one warm-up run, measured in this page)`
    : "time per digit not measured (the page's clock did not advance)";
  $("status").textContent =
    `${time} | model: ${modelName} (${model.length.toLocaleString("en")} bytes) | ` +
    `dgen.wasm ${wasmSize.toLocaleString("en")} bytes`;

  const q = new URLSearchParams();
  if (grid) q.set("grid", "1"); else q.set("digits", text);
  q.set("seed", String(seed));
  if (modelUrl !== null) q.set("model", modelUrl);
  history.replaceState(null, "", "?" + q.toString());
}

let wasmSize = 0;

async function main() {
  const params = new URLSearchParams(location.search);
  if (params.has("digits")) $("digits").value = params.get("digits");
  if (params.has("seed")) $("seed").value = params.get("seed");
  $("grid").checked = params.get("grid") === "1";

  const code = await (await fetch(new URL("dgen.wasm", document.baseURI))).arrayBuffer();
  wasmSize = code.byteLength;
  wasm = (await WebAssembly.instantiate(code, {})).instance.exports;
  model = bytes(wasm.dgen_default_model(), wasm.dgen_default_model_len()).slice();
  modelName = "shipped";
  useModel(model, modelName);

  let error = "";
  if (params.has("model")) {
    const url = params.get("model");
    try {
      const res = await fetch(new URL(url, document.baseURI));
      if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
      error = useModel(new Uint8Array(await res.arrayBuffer()), url) || "";
      if (!error) modelUrl = url;
    } catch (e) {
      error = `${url}: ${e.message}`;
    }
  }
  showError(error);
  render(true);

  const rerender = () => { try { render(false); } catch (e) { showError(String(e)); } };
  for (const id of ["digits", "seed"]) $(id).addEventListener("input", rerender);
  $("grid").addEventListener("change", rerender);
  $("controls").addEventListener("submit", (e) => e.preventDefault());
  $("new-seed").addEventListener("click", () => {
    $("seed").value = String(crypto.getRandomValues(new Uint32Array(1))[0]);
    rerender();
  });
  $("shipped").addEventListener("click", () => {
    useModel(bytes(wasm.dgen_default_model(), wasm.dgen_default_model_len()).slice(), "shipped");
    modelUrl = null;
    $("model-file").value = "";
    rerender();
  });
  $("model-file").addEventListener("change", async () => {
    const file = $("model-file").files[0];
    if (!file) return;
    const err = useModel(new Uint8Array(await file.arrayBuffer()), file.name);
    if (!err) modelUrl = null;
    showError(err || "");
    try { render(true); } catch (e) { showError(String(e)); }
    // For the tests (.ci/web_page.py --pick): how many picked files the page has handled.
    document.body.dataset.picked = String(Number(document.body.dataset.picked || 0) + 1);
  });
}

main().then(
  () => { document.body.dataset.state = "ready"; },
  (e) => { showError(`page error: ${e.message || e}`); document.body.dataset.state = "failed"; },
);
