// vbg studio page: tabs, single image, batch, ID photo, about. No libraries, no network but this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { single: null, id: null, batch: [], batchId: null, running: false };

// ---- tabs -----------------------------------------------------------------------------------
function showTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) {
    b.setAttribute("aria-selected", String(b.dataset.tab === name));
  }
  for (const s of document.querySelectorAll("main > section.tab")) s.hidden = s.id !== `tab-${name}`;
  const slot = document.querySelector(`#tab-${name} .slot`);
  const settings = $("settings");
  if (slot) { slot.appendChild(settings); settings.hidden = false; } else settings.hidden = true;
  if (name === "about") loadAbout();
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  document.dispatchEvent(new CustomEvent("vbg:tab", { detail: name }));
}
for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));

// ---- helpers --------------------------------------------------------------------------------
async function errorText(response) {
  try { const body = await response.json(); if (body && body.error) return body.error; } catch (_) { /* not JSON */ }
  if (response.status === 413) return "the file is too large for this server";
  if (response.status === 503) return "the server is busy: try again in a moment";
  return `the server answered ${response.status} ${response.statusText}`;
}
function showError(el, message) { el.textContent = message || ""; el.hidden = !message; }
function seconds(t0) { return ((performance.now() - t0) / 1000).toFixed(1); }
function kb(n) { return n > 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`; }

// A drop zone: click, drag and drop, paste (when its tab is shown).
function dropZone(zone, input, onFiles) {
  zone.addEventListener("click", (e) => { if (e.target === zone || e.target.tagName === "P" || e.target.tagName === "B") input.click(); });
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  input.addEventListener("change", () => { if (input.files.length) onFiles([...input.files]); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault(); zone.classList.remove("over");
    const files = [...e.dataTransfer.files];
    if (files.length) onFiles(files);
  });
}
document.addEventListener("paste", (e) => {
  const files = [...(e.clipboardData || {}).files || []];
  if (!files.length) return;
  const tab = (document.querySelector("#tabs button[aria-selected=true]") || {}).dataset;
  if (!tab) return;
  if (tab.tab === "single") setSingle(files[0]);
  else if (tab.tab === "idphoto") setIdPhoto(files[0]);
  else if (tab.tab === "batch") addBatch(files);
});

// ---- shared settings --------------------------------------------------------------------------
function bgKind() { return document.querySelector("input[name=bgkind]:checked").value; }
function updateBgOptions() {
  for (const el of document.querySelectorAll(".bg-opt")) el.classList.toggle("shown", el.dataset.for === bgKind());
  const jpeg = $("format").querySelector("option[value=jpeg]");
  jpeg.disabled = bgKind() === "transparent";
  if (jpeg.disabled && $("format").value === "jpeg") $("format").value = "png";
}
for (const r of document.querySelectorAll("input[name=bgkind]")) r.addEventListener("change", updateBgOptions);
for (const s of document.querySelectorAll("#settings .swatch")) {
  s.addEventListener("click", () => { $("bg-color").value = s.dataset.color; document.querySelector("input[value=color]").checked = true; updateBgOptions(); });
}
$("bg-blur").addEventListener("input", () => { $("bg-blur-value").textContent = $("bg-blur").value; });
updateBgOptions();

// The form fields of /api/cutout for the current settings (plus the image itself).
function cutoutForm(file, member) {
  const form = new FormData();
  if (member) form.append("member", member); else form.append("image", file, file.name || "pasted.png");
  const kind = bgKind();
  if (kind === "color") form.append("background", $("bg-color").value);
  if (kind === "blur") form.append("background", `blur:${$("bg-blur").value}`);
  if (kind === "image") {
    const own = $("bg-file").files[0];
    if ($("bg-bundled").value) form.append("background", $("bg-bundled").value);
    else if (own) form.append("background_image", own, own.name);
    else throw new Error("choose a background image (or a bundled one)");
  }
  form.append("format", $("format").value);
  for (const [id, field] of [["quality", "quality"], ["alpha-threshold", "alpha_threshold"], ["erode", "erode"], ["feather", "feather"]]) {
    if ($(id).value !== "") form.append(field, $(id).value);
  }
  if ($("want-matte").checked) form.append("matte", "1");
  if ($("fast-edges").checked) form.append("matting", "fast");
  return form;
}

// POST a form with upload progress: resolves to {status, json}.
function post(url, form, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => { if (onProgress && e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => resolve({ status: xhr.status, json: xhr.response || {} });
    xhr.onerror = () => resolve({ status: 0, json: { error: "the server cannot be reached (was vbg stopped?)" } });
    xhr.send(form);
  });
}
function failure(r) {
  if (r.status === 413 && !r.json.error) return "the file is too large for this server";
  return r.json.error || `the server answered ${r.status}`;
}

// Files over the server's upload cap are refused here, in words, before any upload.
let maxUpload = 64e6;
fetch("/api/about").then((r) => r.json()).then((a) => { maxUpload = (a.server || {}).max_upload_bytes || maxUpload; }).catch(() => {});
function tooLarge(file) {
  return file.size > maxUpload ? `${file.name || "the file"}: ${kb(file.size)} is over this server's limit of ${kb(maxUpload)}` : "";
}

// ---- single image -------------------------------------------------------------------------------
function setSingle(file) {
  if (tooLarge(file)) { showError($("single-error"), tooLarge(file)); return; }
  state.single = file;
  $("single-drop").classList.add("has-file");
  $("single-drop").querySelector("b").textContent = file.name || "pasted image";
  $("single-go").disabled = false;
  $("single-before").src = URL.createObjectURL(file);
  runSingle();
}
dropZone($("single-drop"), $("single-file"), (files) => setSingle(files[0]));
$("single-go").addEventListener("click", runSingle);
$("single-split").addEventListener("input", () => {
  $("single-after-clip").style.clipPath = `inset(0 0 0 ${$("single-split").value}%)`;
});

async function runSingle() {
  if (!state.single) return;
  showError($("single-error"), "");
  let form;
  try { form = cutoutForm(state.single); } catch (e) { showError($("single-error"), e.message); return; }
  form.append("mode", "cutout");
  const t0 = performance.now();
  $("single-go").disabled = true;
  const timer = setInterval(() => { $("single-status").textContent = `working… ${seconds(t0)} s`; }, 200);
  const r = await post("/api/studio/render", form);
  clearInterval(timer);
  $("single-go").disabled = false;
  if (r.status !== 200) {
    $("single-status").textContent = "";
    showError($("single-error"), failure(r));
    return;
  }
  const out = r.json;
  $("single-status").textContent = `done in ${seconds(t0)} s`;
  $("single-after").src = out.url;
  $("single-after-clip").classList.toggle("checker", bgKind() === "transparent");
  $("single-compare").hidden = false;
  $("single-downloads").hidden = false;
  $("single-download").href = `${out.url}?download=1`;
  $("single-download").setAttribute("download", out.name.replace(/^[0-9a-f]{8}-/, ""));
  $("single-download-matte").hidden = !out.matte_url;
  if (out.matte_url) $("single-download-matte").href = `${out.matte_url}?download=1`;
  $("single-info").textContent = `${out.width}×${out.height}, ${kb(out.bytes)}`;
}

// ---- batch ----------------------------------------------------------------------------------------
const BATCH_PARALLEL = 2;
function batchItem(label, fields, after) {
  const li = document.createElement("li");
  li.innerHTML = `<span class="name"></span><progress max="1" value="0"></progress><span class="state">waiting</span>`;
  li.querySelector(".name").textContent = label;
  if (after) after.after(li); else $("batch-list").appendChild(li);
  return { li, done: false, ...fields };
}
const isZip = (f) => /\.zip$/i.test(f.name) || /zip/.test(f.type);
function addBatch(files) {
  for (const file of files) state.batch.push(batchItem(file.name, { file, zip: isZip(file) }));
  $("batch-go").disabled = state.running || !state.batch.some((b) => !b.done);
  $("batch-status").textContent = `${state.batch.length} file(s)`;
}
dropZone($("batch-drop"), $("batch-files"), addBatch);
$("batch-clear").addEventListener("click", () => {
  if (state.running) return;
  state.batch = []; state.batchId = null; $("batch-list").innerHTML = ""; $("batch-done").hidden = true;
  $("batch-go").disabled = true; $("batch-status").textContent = "";
});
$("batch-go").addEventListener("click", runBatch);

function setItem(item, text, cls, progress) {
  const s = item.li.querySelector(".state");
  s.textContent = text; s.className = `state ${cls || ""}`;
  if (progress !== undefined) item.li.querySelector("progress").value = progress;
}

async function runBatch() {
  const todo = state.batch.filter((b) => !b.done);
  if (!todo.length || state.running) return;
  state.running = true;
  $("batch-go").disabled = true;
  $("batch-done").hidden = true;
  if (!state.batchId) {
    const r = await post("/api/studio/batches", new FormData());
    if (r.status !== 200) { $("batch-status").textContent = failure(r); state.running = false; return; }
    state.batchId = r.json.id;
    $("batch-folder").textContent = r.json.folder;
  }
  for (const z of todo.filter((b) => b.zip)) {  // a zip: its photos become items of their own
    setItem(z, "unpacking", "", 0.5);
    const form = new FormData();
    form.append("archive", z.file, z.file.name);
    const r = await post(`/api/studio/batches/${state.batchId}/unzip`, form, (f) => setItem(z, `uploading ${Math.round(f * 100)} %`, "", f * 0.5));
    z.done = true;
    todo.splice(todo.indexOf(z), 1);
    if (r.status !== 200) { setItem(z, "failed", "state-error", 1); reason(z, failure(r)); continue; }
    const n = r.json.members.length;
    setItem(z, `${n} photo${n === 1 ? "" : "s"}`, n ? "state-done" : "state-error", 1);
    if (!n) reason(z, `${z.file.name}: no photos in this zip (jpg, png, webp, bmp, tif)`);
    let last = z.li;
    for (const member of r.json.members) {
      const item = batchItem(member, { member, file: null });
      last.after(item.li); last = item.li;
      state.batch.push(item); todo.push(item);
    }
  }
  let failed = 0, finished = 0;
  const total = todo.length;
  const t0 = performance.now();
  const next = async () => {
    for (let item = todo.shift(); item; item = todo.shift()) {
      if (item.zip) continue;
      let form;
      if (item.file && tooLarge(item.file)) { setItem(item, "not sent", "state-error", 1); reason(item, tooLarge(item.file)); failed++; finished++; continue; }
      try { form = cutoutForm(item.file, item.member); } catch (e) { setItem(item, "not sent", "state-error"); reason(item, e.message); failed++; finished++; continue; }
      form.append("mode", "cutout");
      form.append("batch", state.batchId);
      setItem(item, "uploading", "", 0);
      const r = await post("/api/studio/render", form, (f) => setItem(item, f < 1 ? `uploading ${Math.round(f * 100)} %` : "working…", "", f * 0.5));
      item.done = true;
      finished++;
      if (r.status === 200) {
        setItem(item, "done", "state-done", 1);
        const a = document.createElement("a"); a.href = `${r.json.url}?download=1`; a.textContent = r.json.name; a.className = "link";
        item.li.querySelector(".name").replaceChildren(a);
      } else {
        failed++;
        setItem(item, "failed", "state-error", 1);
        reason(item, failure(r));
      }
      $("batch-status").textContent = `${finished - failed} done, ${failed} failed of ${total}, ${seconds(t0)} s`;
    }
  };
  await Promise.all(Array.from({ length: BATCH_PARALLEL }, next));
  $("batch-zip").href = `/api/studio/batches/${state.batchId}/zip`;
  $("batch-done").hidden = false;
  state.running = false;
  $("batch-go").disabled = !state.batch.some((b) => !b.done);
}
function reason(item, text) {
  const p = document.createElement("span"); p.className = "reason"; p.textContent = text; item.li.appendChild(p);
}

// ---- ID photo -------------------------------------------------------------------------------------
async function loadPresets() {
  const r = await fetch("/api/presets");
  if (!r.ok) return;
  const presets = await r.json();
  for (const p of presets) {
    const o = document.createElement("option");
    o.value = p.name; o.textContent = `${p.name}: ${p.mm[0]}×${p.mm[1]} mm (${p.width}×${p.height} px)`;
    o.dataset.source = p.source;
    $("id-preset").appendChild(o);
  }
  $("id-preset").value = "passport";
  presetInfo();
}
function presetInfo() { const o = $("id-preset").selectedOptions[0]; $("id-preset-info").textContent = o ? o.dataset.source : ""; }
$("id-preset").addEventListener("change", () => { presetInfo(); runIdPhoto(); });
for (const s of document.querySelectorAll(".id-swatch")) {
  s.addEventListener("click", () => { $("id-color").value = s.dataset.color === "white" ? "#ffffff" : s.dataset.color; chooseSwatch(s); runIdPhoto(); });
}
$("id-color").addEventListener("change", () => { chooseSwatch(null); runIdPhoto(); });
$("id-multiple").addEventListener("change", runIdPhoto);
function chooseSwatch(s) { for (const x of document.querySelectorAll(".id-swatch")) x.classList.toggle("chosen", x === s); }
function setIdPhoto(file) {
  if (tooLarge(file)) { showError($("id-error"), tooLarge(file)); return; }
  state.id = file;
  $("id-drop").classList.add("has-file");
  $("id-drop").querySelector("b").textContent = file.name || "pasted image";
  $("id-go").disabled = false;
  runIdPhoto();
}
dropZone($("id-drop"), $("id-file"), (files) => setIdPhoto(files[0]));
$("id-go").addEventListener("click", runIdPhoto);

async function runIdPhoto() {
  if (!state.id) return;
  showError($("id-error"), "");
  const form = new FormData();
  form.append("image", state.id, state.id.name || "pasted.png");
  form.append("mode", "id-photo");
  form.append("preset", $("id-preset").value || "passport");
  form.append("color", $("id-color").value);
  if ($("id-multiple").checked) form.append("allow_multiple", "1");
  if (state.idForce) form.append("force", "1");
  const t0 = performance.now();
  $("id-status").textContent = "working…";
  const r = await post("/api/studio/render", form);
  $("id-report").replaceChildren();
  if (r.status !== 200) {
    $("id-status").textContent = "";
    $("id-preview").hidden = true; $("id-downloads").hidden = true;
    showError($("id-error"), failure(r));
    showReport(r.json.report);
    $("id-force").hidden = !(r.json.report && r.json.report.checks);
    return;
  }
  $("id-force").hidden = true;
  $("id-status").textContent = `done in ${seconds(t0)} s`;
  $("id-result").src = r.json.url;
  $("id-preview").hidden = false;
  $("id-downloads").hidden = false;
  $("id-download").href = `${r.json.url}?download=1`;
  $("id-download").setAttribute("download", r.json.name.replace(/^[0-9a-f]{8}-/, ""));
  const report = r.json.report || {};
  $("id-info").textContent = `${r.json.width}×${r.json.height} px at ${report.dpi || 300} dpi, ${kb(r.json.bytes)}` +
    (report.ok === false ? " (made anyway: a rule is not met)" : "");
  showReport(report);
}
function showReport(report) {
  $("id-report").replaceChildren();
  for (const line of reportLines(report || {})) {
    const li = document.createElement("li"); li.textContent = line.text; li.className = line.ok ? "ok" : "error"; $("id-report").appendChild(li);
  }
}
$("id-force").addEventListener("click", () => { state.idForce = true; runIdPhoto().finally(() => { state.idForce = false; }); });
// The report's checks and problems as lines: {text, ok}.
function reportLines(report) {
  const lines = [];
  const checks = [...(report.checks || [])].sort((a, b) => Number(a.ok) - Number(b.ok));
  return checks.map((c) => ({ text: c.message || `${c.name}: ${c.ok ? "ok" : "not met"}`, ok: c.ok !== false }));
}

// ---- about ------------------------------------------------------------------------------------------
async function loadAbout() {
  const r = await fetch("/api/about");
  if (!r.ok) { $("about-server").textContent = await errorText(r); return; }
  const a = await r.json();
  const rows = [["vbg", a.version], ["Python", a.python], ["platform", a.platform], ...Object.entries(a.versions || {})];
  fillTable($("about-versions"), ["component", "version"], rows);
  fillTable($("about-models"), ["model", "licence", "installed"],
    (a.models || []).map((m) => [m.name, m.licence || "", m.installed ? "yes" : `no${m.pull ? ` (${m.pull})` : ""}`]));
  const p = a.provider || {};
  const running = Object.entries(p.running || {}).map(([m, v]) => `${m}: ${v}`).join(", ");
  $("about-provider").textContent = `runs on: ${running || "(nothing loaded yet: models load with the first photo)"}; onnxruntime offers ${(p.available || []).join(", ")}`;
  const s = a.server || {};
  const w = a.work || {};
  $("about-server").textContent = `${s.host}:${s.port}${s.token ? " (token)" : ""}; live mode ${a.live ? "running" : "off"}; ` +
    `${w.workers} worker(s), queue ${w.queue}, ${w.done} photos done, ${w.rejected} turned away busy; batches saved in ${s.output_dir}`;
}
function fillTable(table, head, rows) {
  table.replaceChildren();
  const tr = table.insertRow();
  for (const h of head) { const th = document.createElement("th"); th.textContent = h; tr.appendChild(th); }
  for (const row of rows) { const r = table.insertRow(); for (const cell of row) r.insertCell().textContent = cell; }
}

// ---- start --------------------------------------------------------------------------------------------
loadPresets();
const wanted = (location.hash || "#single").slice(1);
showTab(document.querySelector(`#tabs button[data-tab="${CSS.escape(wanted)}"]`) ? wanted : "single");
