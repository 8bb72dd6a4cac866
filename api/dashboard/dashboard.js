// linkcast dashboard: plain JS, no build step, no third-party code.
// The token lives in this closure only (never in storage); the live stream is
// read with fetch() because EventSource cannot send an Authorization header.
"use strict";
(() => {
  const HISTORY = 60; // windows kept per link in the chart
  const REFRESH_MS = 10000;
  const $ = (id) => document.getElementById(id);

  let token = null;
  let expiresAt = 0;
  let streamAbort = null;
  let refreshTimer = null;
  let selected = null;
  const links = new Map(); // link -> latest LinkAnswer (as served, then updated live)
  const history = new Map(); // link -> windows, oldest first
  let liveEvents = 0;
  let dropped = 0;

  // ---- API calls -------------------------------------------------------------

  async function api(path) {
    const answer = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
    if (answer.status === 401) { signOut("the token was refused or expired; sign in again"); throw new Error("401"); }
    if (!answer.ok) throw new Error(`${path}: HTTP ${answer.status}`);
    return answer.json();
  }

  async function signIn(event) {
    event.preventDefault();
    $("login-error").textContent = "";
    const body = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: $("client-id").value,
      client_secret: $("client-secret").value,
      scope: "read",
    });
    let answer;
    try {
      answer = await fetch("/v1/token", { method: "POST", body });
    } catch (e) {
      $("login-error").textContent = `the API did not answer: ${e}`;
      return;
    }
    const json = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      $("login-error").textContent = json.error_description || json.detail || `HTTP ${answer.status}`;
      return;
    }
    token = json.access_token;
    expiresAt = Date.now() + json.expires_in * 1000;
    $("client-secret").value = "";
    $("login").hidden = true;
    $("main").hidden = false;
    $("sign-out").hidden = false;
    await refresh();
    refreshTimer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
    openStream();
  }

  function signOut(reason) {
    token = null;
    if (streamAbort) streamAbort.abort();
    streamAbort = null;
    clearInterval(refreshTimer);
    $("main").hidden = true;
    $("login").hidden = false;
    $("sign-out").hidden = true;
    setState("signed out", "off");
    $("login-error").textContent = reason || "";
  }

  async function refresh() {
    const [page, alerts, models] = await Promise.all([
      api("/v1/links?limit=1000"), api("/v1/alerts?recent=20"), api("/v1/models"),
    ]);
    for (const answer of page.links) links.set(answer.link, answer);
    $("links-total").textContent = `(${links.size}; view ${fmtAge(page.age_s)} old)`;  // the stream adds links between refreshes
    if (selected === null && page.links.length > 0) await select(page.links[0].link);
    else if (selected !== null) await loadLink(selected);
    renderLinks();
    renderAlerts(alerts);
    renderModels(models);
  }

  async function select(link) {
    selected = link;
    const h = await api(`/v1/links/${encodePath(link)}/history`).catch(() => null);  // the API's default n
    if (h) history.set(link, h.windows);
    await loadLink(link);
    renderLinks();
  }

  async function loadLink(link) {
    const answer = await api(`/v1/links/${encodePath(link)}`).catch(() => null);
    if (answer) links.set(link, answer);
    renderDetail();
  }

  // ---- live stream -------------------------------------------------------------

  async function openStream() {
    if (!token) return;
    streamAbort = new AbortController();
    setState("connecting", "wait");
    try {
      const answer = await fetch("/v1/stream", {
        headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
        signal: streamAbort.signal,
      });
      if (answer.status === 401) return signOut("the token expired; sign in again");
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      setState("live", "on");
      const reader = answer.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          onFrame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (e) {
      if (e.name === "AbortError") return;
    }
    if (!token) return;
    if (Date.now() >= expiresAt) return signOut("the token expired; sign in again");
    setState("reconnecting", "wait");
    setTimeout(openStream, 3000);
  }

  function onFrame(frame) {
    let kind = "message";
    const data = [];
    for (const line of frame.split("\n")) {
      if (line.startsWith("event:")) kind = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (data.length === 0) return;
    const record = JSON.parse(data.join("\n"));
    if (kind === "dropped") { dropped += record.dropped; }
    else if (kind === "window") onWindow(record);
    else if (kind === "forecast") onForecast(record);
    else if (kind === "alert") onAlert(record);
    else if (kind === "expired") { signOut("the token expired; sign in again"); return; }
    liveEvents += 1;
    $("stream-figures").textContent = `${liveEvents} live events` + (dropped ? `, ${dropped} dropped` : "");
    $("stream-figures").dataset.events = String(liveEvents);
  }

  function onWindow(w) {
    const answer = links.get(w.link) || blankLink(w.link);
    answer.window = w;
    answer.age_s = 0;
    if (answer.capacity_bps) answer.utilisation = w.window_bps / answer.capacity_bps;
    answer.class_mix = byteShares(w.class_mix);
    answer.dominant_class = answer.class_mix
      ? Object.keys(answer.class_mix).sort().reduce((a, b) => (answer.class_mix[b] > answer.class_mix[a] ? b : a))
      : null;
    links.set(w.link, answer);
    const h = history.get(w.link);
    if (h && (h.length === 0 || h[h.length - 1].bin_end_s < w.bin_end_s)) {
      h.push(w);
      if (h.length > HISTORY) h.shift();
    }
    if (selected === null) select(w.link).catch(() => {});
    renderLinks();
    if (w.link === selected) renderDetail();
  }

  function onForecast(f) {
    const answer = links.get(f.link) || blankLink(f.link);
    answer.forecast = f;
    links.set(f.link, answer);
    if (f.link === selected) renderDetail();
  }

  function onAlert(a) {
    const answer = links.get(a.link) || blankLink(a.link);
    const others = (answer.alerts || []).filter((x) => x.id !== a.id);
    answer.alerts = a.state === "raised" ? [...others, a] : others;
    links.set(a.link, answer);
    renderLinks();
    if (a.link === selected) renderDetail();
    api("/v1/alerts?recent=20").then(renderAlerts).catch(() => {});
  }

  // As the API computes it (api/classmix.py): shares of bytes, or of flows when no bytes.
  function byteShares(mix) {
    const entries = Object.entries(mix || {});
    for (const unit of ["bytes", "flows"]) {
      const total = entries.reduce((sum, [, n]) => sum + n[unit], 0);
      if (total > 0) {
        return Object.fromEntries(entries.filter(([, n]) => n[unit] > 0).sort()
          .map(([cls, n]) => [cls, n[unit] / total]));
      }
    }
    return null;
  }

  function blankLink(link) {
    return { link, age_s: 0, state: null, window: null, alerts: [], forecast: null, class_mix: null };
  }

  // ---- rendering (text only through textContent: nothing from the API becomes HTML) ----

  function renderLinks() {
    const body = $("links-table").tBodies[0];
    body.replaceChildren();
    for (const link of [...links.keys()].sort()) {
      const a = links.get(link);
      const tr = document.createElement("tr");
      tr.dataset.link = link;
      if (link === selected) tr.className = "selected";
      const alerting = (a.alerts || []).length;
      cells(tr, [
        link,
        a.window ? fmtBps(a.window.window_bps) : "–",
        a.utilisation == null ? "–" : `${(a.utilisation * 100).toFixed(1)} %`,
        a.dominant_class || "–",
        alerting ? String(alerting) : "",
        fmtAge(a.age_s),
      ]);
      if (alerting) tr.classList.add("alerting");
      tr.addEventListener("click", () => select(link).catch(() => {}));
      body.appendChild(tr);
    }
  }

  function renderDetail() {
    const a = selected === null ? null : links.get(selected);
    if (!a) return;
    $("detail-title").textContent = `${a.link}` + (a.window ? ` · ${fmtBps(a.window.window_bps)}` : "");
    drawChart(history.get(a.link) || [], a.forecast);
    const fBody = $("forecast-table").tBodies[0];
    fBody.replaceChildren();
    const errors = new Map((a.forecast_error || []).map((e) => [e.horizon_s, e]));
    if (a.forecast) {
      for (const h of a.forecast.horizons) {
        const e = errors.get(h.horizon_s);
        const tr = document.createElement("tr");
        cells(tr, [
          `+${h.horizon_s} s`, fmtBps(h.bps), `${fmtBps(h.lower_bps)} – ${fmtBps(h.upper_bps)}`,
          e ? fmtBps(e.mae_bps) : "–", e ? `${(e.coverage * 100).toFixed(0)} %` : "–",
        ]);
        fBody.appendChild(tr);
      }
      $("forecast-note").textContent = `model ${a.forecast.model_version}, made at ${fmtTime(a.forecast.made_at_s)}`;
    } else {
      $("forecast-note").textContent = "no forecast for this link yet";
    }
    const mix = $("class-mix");
    mix.replaceChildren();
    if (a.class_mix) {
      for (const [cls, share] of Object.entries(a.class_mix)) {
        const row = document.createElement("div");
        row.className = "mix";
        const label = document.createElement("span");
        label.textContent = `${cls} ${(share * 100).toFixed(1)} %`;
        const bar = document.createElement("span");
        bar.className = `bar c-${cls}`;
        bar.style.width = `${Math.max(1, share * 100)}%`;
        row.append(label, bar);
        mix.appendChild(row);
      }
    } else {
      mix.textContent = "none in the newest bin (classification off, or an empty bin)";
    }
    const list = $("link-alerts");
    list.replaceChildren();
    for (const alert of a.alerts || []) list.appendChild(alertItem(alert));
    if (!(a.alerts || []).length) list.textContent = "none";
  }

  function renderAlerts(answer) {
    const list = $("alerts");
    list.replaceChildren();
    for (const alert of answer.active) list.appendChild(alertItem(alert, "active"));
    for (const alert of answer.recent) if (alert.state === "cleared") list.appendChild(alertItem(alert, "cleared"));
    if (!list.children.length) list.textContent = "no alerts";
  }

  function alertItem(alert, tag) {
    const li = document.createElement("li");
    li.className = `sev-${alert.severity}`;
    li.textContent = `${tag ? tag + " · " : ""}${alert.severity} · ${alert.link} · ${alert.reason} (${fmtTime(alert.ts)})`;
    return li;
  }

  function renderModels(answer) {
    const list = $("models");
    list.replaceChildren();
    for (const m of answer.models) {
      const li = document.createElement("li");
      const metrics = Object.entries(m.metrics).map(([k, v]) => `${k} ${Number(v).toPrecision(3)}`).join(", ");
      li.textContent = `${m.kind} ${m.version}` + (metrics ? ` (${metrics})` : "");
      list.appendChild(li);
    }
    if (!answer.models.length) list.textContent = "no model announced yet";
  }

  // ---- the chart (plain canvas) ------------------------------------------------

  function drawChart(windows, forecast) {
    const canvas = $("chart");
    const ratio = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth || 760, cssH = canvas.clientHeight || 300;
    canvas.width = cssW * ratio; canvas.height = cssH * ratio;
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, cssW, cssH);
    const pad = { l: 70, r: 12, t: 10, b: 26 };
    const horizons = forecast ? forecast.horizons : [];
    const times = windows.map((w) => w.bin_end_s).concat(horizons.map((h) => forecast.made_at_s + h.horizon_s));
    const values = windows.flatMap((w) => [w.bps, w.window_bps]).concat(horizons.flatMap((h) => [h.upper_bps, h.lower_bps, h.bps]));
    canvas.dataset.points = String(windows.length);
    canvas.dataset.forecast = String(horizons.length);
    if (times.length === 0) { g.fillStyle = "#888"; g.fillText("no data yet", pad.l, cssH / 2); return; }
    const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 1);
    const vMax = Math.max(...values, 1) * 1.08;
    const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (cssW - pad.l - pad.r);
    const y = (v) => cssH - pad.b - (v / vMax) * (cssH - pad.t - pad.b);
    g.strokeStyle = "#ddd"; g.fillStyle = "#666"; g.font = "11px sans-serif"; g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const v = (vMax * i) / 4;
      g.beginPath(); g.moveTo(pad.l, y(v)); g.lineTo(cssW - pad.r, y(v)); g.stroke();
      g.fillText(fmtBps(v), 4, y(v) + 4);
    }
    const now = windows.length ? windows[windows.length - 1].bin_end_s : t0;
    for (const t of [t0, now, t1]) g.fillText(`${t === now ? "last bin" : fmtSigned(t - now)}`, Math.min(x(t), cssW - 60), cssH - 8);
    if (horizons.length) {
      const pts = [...horizons].sort((a, b) => a.horizon_s - b.horizon_s);
      // The forecast starts from the bin it was made at, when the chart still has that bin.
      const made = windows.find((w) => Math.abs(w.bin_end_s - forecast.made_at_s) < 1e-3);
      const head = made ? [{ t: forecast.made_at_s, v: made.bps }] : [];
      const at = (h) => forecast.made_at_s + h.horizon_s;
      const band = [...head, ...pts.map((h) => ({ t: at(h), v: h.upper_bps })),
        ...[...pts].reverse().map((h) => ({ t: at(h), v: h.lower_bps })), ...head];
      g.fillStyle = "rgba(230, 126, 34, 0.22)";
      g.beginPath();
      band.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p.v)) : g.moveTo(x(p.t), y(p.v))));
      g.closePath(); g.fill();
      line(g, [...head, ...pts.map((h) => ({ t: at(h), v: h.bps }))], x, y, "#e67e22", [5, 4]);
      g.fillStyle = "#e67e22";
      for (const h of pts) { g.beginPath(); g.arc(x(at(h)), y(h.bps), 3, 0, 7); g.fill(); }
    }
    line(g, windows.map((w) => ({ t: w.bin_end_s, v: w.window_bps })), x, y, "#27ae60", [2, 3]);
    line(g, windows.map((w) => ({ t: w.bin_end_s, v: w.bps })), x, y, "#2c6fbb", []);
  }

  function line(g, points, x, y, colour, dash) {
    if (points.length === 0) return;
    g.strokeStyle = colour; g.lineWidth = 2; g.setLineDash(dash);
    g.beginPath();
    points.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p.v)) : g.moveTo(x(p.t), y(p.v))));
    g.stroke(); g.setLineDash([]);
  }

  // ---- small things ------------------------------------------------------------

  function cells(tr, texts) {
    for (const text of texts) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); }
  }
  function setState(text, cls) { const s = $("stream-state"); s.textContent = text; s.className = `pill ${cls}`; }
  function encodePath(link) { return link.split("/").map(encodeURIComponent).join("/"); }
  function fmtBps(v) {
    const units = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"];
    let i = 0;
    while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
  }
  function fmtAge(s) { return s == null ? "–" : s < 60 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`; }
  function fmtSigned(s) { return `${s >= 0 ? "+" : ""}${s.toFixed(0)} s`; }
  function fmtTime(s) { return new Date(s * 1000).toISOString().slice(11, 19) + "Z"; }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut(""));
  });
})();
