// Live tab: preview of what the apps see, the state, and controls acting on the running camera.
// The preview stream and the state polling run only while the tab is shown.
"use strict";

(() => {
  const section = document.getElementById("tab-live");
  if (!section) return;
  const el = (id) => document.getElementById(id);
  const POLL_MS = 1000;
  let timer = null;
  let last = null;          // the last state from the server
  let available = null;     // null: not asked yet; false: this server has no live mode

  section.innerHTML = `
    <div id="live-off" class="card muted" hidden></div>
    <div id="live-panel" class="columns live-columns" hidden>
      <div>
        <div class="card live-preview">
          <img id="live-preview" alt="the output as video-call apps see it">
          <div id="live-paused-note" class="live-paused-note" hidden>Paused: the camera is off; apps see a still card.</div>
        </div>
        <div id="live-state" class="card live-state" aria-live="polite"></div>
      </div>
      <div>
        <div class="card">
          <div class="row">
            <button class="btn primary" id="live-pause" type="button">Pause camera</button>
            <label><input type="checkbox" id="live-mirror"> Mirror</label>
            <label>Model <select id="live-model"></select></label>
          </div>
          <p class="error" id="live-error" role="alert" hidden></p>
        </div>
        <div class="card">
          <h3>Background</h3>
          <div id="live-gallery" class="live-gallery"></div>
          <div class="row">
            <label class="btn">Add an image or video…<input type="file" id="live-upload" accept="image/*,video/*" hidden></label>
            <span class="muted" id="live-upload-status"></span>
          </div>
          <div class="row">
            <button class="btn" type="button" id="live-blur-use">Blur the room</button>
            <input type="range" id="live-blur" min="1" max="100" value="15" aria-label="blur strength">
            <output id="live-blur-value">15</output>
          </div>
          <div class="row">
            <span>Colour</span>
            <input type="color" id="live-color" value="#00ff00" aria-label="background colour">
            <button type="button" class="swatch live-swatch" data-color="#ffffff" title="white" style="background:#fff"></button>
            <button type="button" class="swatch live-swatch" data-color="#1f2a44" title="navy" style="background:#1f2a44"></button>
            <button type="button" class="swatch live-swatch" data-color="#00ff00" title="green screen" style="background:#0f0"></button>
          </div>
        </div>
      </div>
    </div>`;

  const shown = () => !section.hidden && document.visibilityState === "visible";
  const fmt = (v, digits) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  const baseName = (p) => String(p).split(/[\\/]/).pop();

  function showError(message) {
    const box = el("live-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  async function call(method, path, body) {
    const init = { method, headers: {} };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      const error = new Error((data && data.error) || `the server answered ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function backgroundWords(s) {
    const b = s.background || {};
    if (b.background) return `image ${baseName(b.background)}`;
    if (b.video) return `video ${baseName(b.video)}`;
    if (b.color) return `colour ${b.color}`;
    return `blur ${b.blur || 15}${b.blur ? "" : " (default)"}`;
  }

  function render(s) {
    last = s;
    const cam = s.camera || {};
    el("live-state").innerHTML = "";
    const lines = [
      `${s.state} · ${fmt(s.fps, 1)} fps · CPU ${fmt(s.cpu_ms_per_frame, 1)} ms/frame · latency p95 ${fmt(s.latency_p95_ms, 0)} ms`,
      `model ${s.model} on ${String(s.provider).toUpperCase()}${s.gpu ? " (whole frames on the GPU)" : ""}`,
      `camera ${cam.status || cam.state}${cam.info ? ` · ${cam.info}` : ""}${cam.reconnects ? ` · ${cam.reconnects} reconnects` : ""}`,
      `background ${backgroundWords(s)} · mirror ${s.mirror ? "on" : "off"}`,
    ];
    for (const line of lines) {
      const p = document.createElement("p");
      p.textContent = line;
      el("live-state").appendChild(p);
    }
    el("live-pause").textContent = s.paused ? "Resume camera" : "Pause camera";
    el("live-paused-note").hidden = !s.paused;
    el("live-mirror").checked = !!s.mirror;
    const models = el("live-model");
    if (s.models && models.options.length !== s.models.length) {
      models.innerHTML = "";
      for (const name of s.models) models.add(new Option(name, name));
    }
    if (document.activeElement !== models) models.value = (s.settings || {}).model || s.model;
    const b = s.background || {};
    if (b.blur && document.activeElement !== el("live-blur")) {
      el("live-blur").value = b.blur;
      el("live-blur-value").textContent = b.blur;
    }
    for (const tile of el("live-gallery").querySelectorAll(".live-tile")) {
      tile.classList.toggle("chosen", tile.dataset.path === (b[tile.dataset.key] || ""));
    }
  }

  async function refresh() {
    try {
      const s = await call("GET", "/api/live");
      if (available !== true) { available = true; setAvailable(true); }
      render(s);
    } catch (e) {
      if (e.status === 409) { available = false; setAvailable(false, e.message); stop(); }
      else el("live-state").textContent = `no answer from live mode: ${e.message}`;
    }
  }

  function setAvailable(yes, why) {
    el("live-panel").hidden = !yes;
    el("live-off").hidden = yes;
    const placeholder = document.getElementById("live-placeholder");
    if (placeholder) placeholder.hidden = true;
    if (!yes) el("live-off").textContent = why || "live mode is not running";
    if (yes) { loadGallery(); startPreview(); }
  }

  async function change(body) {
    showError("");
    try { render(await call("PATCH", "/api/live", body)); } catch (e) { showError(e.message); }
  }

  async function loadGallery() {
    let items = [];
    try { items = (await call("GET", "/api/live/backgrounds")).backgrounds; } catch (e) { showError(e.message); return; }
    const box = el("live-gallery");
    box.innerHTML = "";
    for (const item of items) {
      const tile = document.createElement("button");
      tile.type = "button";
      tile.className = "live-tile";
      Object.assign(tile.dataset, { name: item.name, key: item.key, path: item.path, kind: item.kind });
      tile.title = `${item.name}${item.type === "video" ? " (looping video)" : ""}`;
      const img = document.createElement("img");
      img.src = item.thumb;
      img.alt = item.name;
      img.loading = "lazy";
      const label = document.createElement("span");
      label.textContent = (item.type === "video" ? "▶ " : "") + item.name.replace(/\.[^.]+$/, "");
      tile.append(img, label);
      tile.addEventListener("click", () => change({ [item.key]: item.path }));
      box.appendChild(tile);
    }
    if (last) render(last);
  }

  function startPreview() {
    const img = el("live-preview");
    if (shown() && available && !img.getAttribute("src")) img.src = `/api/live/preview.mjpg?t=${Date.now()}`;
  }
  function stopPreview() { el("live-preview").removeAttribute("src"); }  // closes the stream

  function start() {
    if (timer || available === false) return;
    refresh();
    timer = setInterval(refresh, POLL_MS);
    startPreview();
  }
  function stop() {
    clearInterval(timer);
    timer = null;
    stopPreview();
  }
  const update = () => (shown() ? start() : stop());

  el("live-pause").addEventListener("click", async () => {
    showError("");
    try { render(await call("POST", last && last.paused ? "/api/live/resume" : "/api/live/pause")); }
    catch (e) { showError(e.message); }
  });
  el("live-mirror").addEventListener("change", (e) => change({ mirror: e.target.checked }));
  el("live-model").addEventListener("change", (e) => change({ model: e.target.value }));
  el("live-blur").addEventListener("input", (e) => { el("live-blur-value").textContent = e.target.value; });
  el("live-blur").addEventListener("change", (e) => change({ blur: Number(e.target.value) }));
  el("live-blur-use").addEventListener("click", () => change({ blur: Number(el("live-blur").value) }));
  el("live-color").addEventListener("change", (e) => change({ color: e.target.value }));
  for (const swatch of section.querySelectorAll(".live-swatch")) {
    swatch.addEventListener("click", () => { el("live-color").value = swatch.dataset.color; change({ color: swatch.dataset.color }); });
  }
  el("live-upload").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (!file) return;
    const status = el("live-upload-status");
    status.textContent = `adding ${file.name}…`;
    showError("");
    const form = new FormData();
    form.append("file", file);
    form.append("use", "true");
    try {
      const reply = await call("POST", "/api/live/backgrounds", form);
      status.textContent = `added ${reply.background.name}`;
      if (reply.state) render(reply.state);
      loadGallery();
    } catch (err) { status.textContent = ""; showError(err.message); }
  });

  document.addEventListener("vbg:tab", update);
  document.addEventListener("visibilitychange", update);
  new MutationObserver(update).observe(section, { attributes: true, attributeFilter: ["hidden"] });
  update();
})();
