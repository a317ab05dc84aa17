"""The page of report.html: markup, style and the script that draws the charts as inline SVG.

`__TITLE__` and `__DATA__` are filled by report.py. Nothing is loaded from the network.
"""
from __future__ import annotations

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>__TITLE__</title>
<style>
:root { --crit: #b3261e; --warn: #b86e00; --info: #2f6db5; --ok: #2e7d32; --ink: #1d2329; --muted: #5f6b76; --line: #dde3e8; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0; background: #f6f8fa; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 18px 28px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 10px; }
.sub { color: var(--muted); font-size: 13px; }
main { padding: 20px 28px; display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 18px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px; min-width: 0; }
section.wide { grid-column: 1 / -1; }
.tiles { display: flex; gap: 12px; flex-wrap: wrap; margin-top: 12px; }
.tile { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 130px; }
.tile b { display: block; font-size: 20px; }
.legend span { display: inline-flex; align-items: center; margin-right: 12px; font-size: 12px; color: var(--muted); }
.legend i { width: 10px; height: 10px; display: inline-block; margin-right: 4px; border-radius: 2px; }
svg text { font-size: 11px; fill: var(--ink); }
svg .axis { stroke: var(--line); }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; position: sticky; top: 0; cursor: pointer; user-select: none; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.matrix td { text-align: center; min-width: 56px; }
.matrix td.diag { outline: 2px solid var(--ok); outline-offset: -2px; }
.sev { font-weight: 600; }
.sev.critical { color: var(--crit); } .sev.warning { color: var(--warn); } .sev.info { color: var(--info); }
.controls { display: flex; gap: 8px; margin-bottom: 10px; flex-wrap: wrap; }
.controls input, .controls select { padding: 5px 8px; border: 1px solid var(--line); border-radius: 4px; font: inherit; }
tr.visit { cursor: pointer; } tr.visit:hover { background: #f0f4f8; }
tr.detail td { background: #fafbfc; }
.scroll { max-height: 560px; overflow: auto; }
.note { color: var(--muted); font-size: 13px; }
.chart { overflow-x: auto; }
</style>
</head>
<body>
<header>
  <h1>__TITLE__</h1>
  <div class="sub" id="runline"></div>
  <div class="tiles" id="tiles"></div>
</header>
<main>
  <section><h2>Findings per rule</h2><div class="legend sevlegend"></div><div class="chart" data-chart="rules"></div></section>
  <section><h2>Findings per month (date of service)</h2><div class="legend sevlegend"></div><div class="chart" data-chart="months"></div></section>
  <section><h2>Billed vs recommended pump service code</h2>
    <p class="note">Rows: what the visit billed. Columns: the code the rules call for. Outlined cells agree.</p>
    <div class="chart" data-chart="matrix"></div></section>
  <section><h2>Documentation gaps by element</h2><div class="chart" data-chart="gaps"></div></section>
  <section><h2>Visits by performer class</h2>
    <div class="legend"><span><i style="background:#9fb6cc"></i>pump visits</span><span><i style="background:var(--crit)"></i>with findings</span></div>
    <div class="chart" data-chart="performers"></div></section>
  <section><h2>Estimated dollars at risk</h2><div class="chart" data-chart="dollars"></div></section>
  <section class="wide"><h2>Visits</h2>
    <div class="controls">
      <input id="q" type="search" placeholder="Filter: encounter, patient, code, rule" aria-label="filter visits">
      <select id="sevsel" aria-label="severity"><option value="">any result</option><option value="critical">critical</option><option value="warning">warning</option><option value="info">info</option><option value="clean">clean</option></select>
      <select id="rulesel" aria-label="rule"><option value="">any rule</option></select>
      <span class="note" id="shown"></span>
    </div>
    <div class="scroll"><table id="visits"><thead><tr>
      <th data-key="date">Date</th><th data-key="encounter">Encounter</th><th data-key="patient">Patient</th>
      <th data-key="performer">Performer</th><th data-key="billed">Billed</th><th data-key="expected">Recommended</th>
      <th data-key="severity">Result</th><th data-key="rules">Rules</th><th data-key="amount" class="num">Est. $</th>
    </tr></thead><tbody></tbody></table></div>
    <p class="note" id="cut"></p>
  </section>
</main>
<script type="application/json" id="audit-data">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("audit-data").textContent);
const NS = "http://www.w3.org/2000/svg";
const SEV = ["critical", "warning", "info"];
const COLOR = {critical: "#b3261e", warning: "#b86e00", info: "#2f6db5"};
const fmt$ = v => (v < 0 ? "-$" : "$") + Math.abs(v).toLocaleString(undefined, {maximumFractionDigits: 0});

function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
function text(parent, x, y, s, attrs) { const t = el("text", Object.assign({x, y}, attrs || {}), parent); t.textContent = s; return t; }
function box(name) { return document.querySelector(`[data-chart="${name}"]`); }
function empty(name, message) { const b = box(name); b.innerHTML = `<p class="note">${message}</p>`; b.dataset.drawn = "empty"; }
function done(name, svg) { box(name).appendChild(svg); box(name).dataset.drawn = String(svg.querySelectorAll("rect").length); }

// horizontal stacked bars: rows = [{label, title, parts: [{key, value, color}]}]
function hbars(name, rows, opts) {
  if (!rows.length) return empty(name, (opts && opts.none) || "Nothing to show.");
  const labelW = (opts && opts.labelW) || 150, w = 440, bar = 18, gap = 6;
  const max = Math.max(...rows.map(r => r.parts.reduce((s, p) => s + p.value, 0)), 1);
  const h = rows.length * (bar + gap) + 6;
  const svg = el("svg", {viewBox: `0 0 ${labelW + w + 60} ${h}`, width: "100%", role: "img"});
  rows.forEach((r, i) => {
    const y = i * (bar + gap);
    const t = text(svg, labelW - 6, y + bar * 0.7, r.label, {"text-anchor": "end"});
    if (r.title) { const tt = el("title", {}, t); tt.textContent = r.title; }
    let x = labelW, total = 0;
    for (const p of r.parts) {
      if (!p.value) continue;
      const pw = Math.max(1, p.value / max * w);
      const rect = el("rect", {x, y, width: pw, height: bar, fill: p.color, rx: 2}, svg);
      el("title", {}, rect).textContent = `${r.label}: ${p.key} ${p.value}`;
      x += pw; total += p.value;
    }
    text(svg, x + 4, y + bar * 0.7, (opts && opts.format) ? opts.format(total) : String(total));
  });
  done(name, svg);
}

// vertical stacked bars by month
function vbars(name, months, series) {
  if (!months.length) return empty(name, "No findings.");
  const w = 560, h = 220, left = 34, bottom = 34;
  const totals = months.map(m => series.reduce((s, k) => s + (m.parts[k] || 0), 0));
  const max = Math.max(...totals, 1);
  const svg = el("svg", {viewBox: `0 0 ${w} ${h}`, width: "100%", role: "img"});
  el("line", {x1: left, y1: h - bottom, x2: w, y2: h - bottom, class: "axis"}, svg);
  text(svg, left - 4, 12, String(max), {"text-anchor": "end"});
  const slot = (w - left) / months.length, bw = Math.min(36, slot * 0.7);
  months.forEach((m, i) => {
    let y = h - bottom;
    const x = left + i * slot + (slot - bw) / 2;
    for (const k of series) {
      const v = m.parts[k] || 0;
      if (!v) continue;
      const bh = v / max * (h - bottom - 16);
      y -= bh;
      const rect = el("rect", {x, y, width: bw, height: bh, fill: COLOR[k]}, svg);
      el("title", {}, rect).textContent = `${m.month}: ${v} ${k}`;
    }
    if (i % Math.ceil(months.length / 10) === 0)
      text(svg, x + bw / 2, h - bottom + 14, m.month, {"text-anchor": "middle"});
  });
  done(name, svg);
}

function legend() {
  document.querySelectorAll(".sevlegend").forEach(l => {
    l.innerHTML = SEV.map(s => `<span><i style="background:${COLOR[s]}"></i>${s}</span>`).join("");
  });
}

function header() {
  const c = D.run.counts, v = D.run.versions || {};
  const cms = v.cms || {};
  const rel = Object.entries(cms).map(([k, s]) => s ? `${k.toUpperCase()} ${s.release}${s.synthetic ? " (synthetic)" : ""}` : `${k.toUpperCase()} none`).join(", ");
  document.getElementById("runline").textContent =
    `Engine ${D.run.engine}; rule book ${v.rulebook || "?"}; CMS files: ${rel}; ${c.resources.toLocaleString()} resources read, ${c.visits.toLocaleString()} visits grouped.`;
  const dollars = D.dollars.reduce((s, r) => s + r.amount, 0);
  const tiles = [["pump visits", c.pump_visits], ["with findings", c.visits_with_findings], ["clean", c.clean_visits],
                 ["findings", c.findings], ["est. $ difference", D.dollars.length ? fmt$(dollars) : "no fee schedule"]];
  document.getElementById("tiles").innerHTML = tiles.map(([k, v]) => `<div class="tile"><b>${typeof v === "number" ? v.toLocaleString() : v}</b>${k}</div>`).join("");
}

function rulesChart() {
  const by = {};
  for (const r of D.perRule) (by[r.rule] = by[r.rule] || {})[r.severity] = r.n;
  const rows = Object.entries(by).map(([rule, s]) => ({label: rule, title: D.titles[rule] || rule,
    parts: SEV.map(k => ({key: k, value: s[k] || 0, color: COLOR[k]}))}))
    .sort((a, b) => b.parts.reduce((s, p) => s + p.value, 0) - a.parts.reduce((s, p) => s + p.value, 0));
  hbars("rules", rows, {none: "No findings: every pump visit was coded and documented as the rules call for."});
}

function monthsChart() {
  const by = {};
  for (const r of D.perMonth) (by[r.month] = by[r.month] || {month: r.month, parts: {}}).parts[r.severity] = r.n;
  vbars("months", Object.values(by).sort((a, b) => a.month < b.month ? -1 : 1), SEV);
}

function matrixChart() {
  if (!D.matrix.length) return empty("matrix", "No pump visits.");
  const billed = [...new Set(D.matrix.map(m => m.billed))].sort(), expected = [...new Set(D.matrix.map(m => m.expected))].sort();
  const n = {}; let max = 1;
  for (const m of D.matrix) { n[m.billed + "|" + m.expected] = m.n; max = Math.max(max, m.n); }
  let h = `<table class="matrix"><thead><tr><th>billed \\ recommended</th>${expected.map(e => `<th>${e}</th>`).join("")}</tr></thead><tbody>`;
  for (const b of billed) {
    h += `<tr><th>${b}</th>`;
    for (const e of expected) {
      const v = n[b + "|" + e] || 0, a = v ? 0.12 + 0.75 * v / max : 0;
      const tint = b === e ? `rgba(46,125,50,${a})` : `rgba(179,38,30,${a})`;
      h += `<td class="${b === e ? "diag" : ""}" style="background:${v ? tint : "transparent"}">${v || ""}</td>`;
    }
    h += "</tr>";
  }
  box("matrix").innerHTML = h + "</tbody></table>";
  box("matrix").dataset.drawn = String(D.matrix.length);
}

function gapsChart() {
  hbars("gaps", D.gaps.map(g => ({label: (D.labels[g.element] || g.element).slice(0, 34), title: g.element,
    parts: [{key: "missing", value: g.n, color: "#6c5ba7"}]})), {labelW: 220, none: "No documentation gaps."});
}

function performersChart() {
  hbars("performers", D.performers.map(p => ({label: p.performer, parts: [
    {key: "clean", value: p.visits - p.flagged, color: "#9fb6cc"}, {key: "with findings", value: p.flagged, color: COLOR.critical}]})),
    {none: "No pump visits."});
}

function dollarsChart() {
  if (!D.dollars.length) return empty("dollars", D.run.fee_schedule
    ? "No finding changes a billed code with a fee on the loaded fee schedule."
    : "No real Medicare fee schedule (PPRRVU) is loaded, so no estimate: set mpfs_rvu_path and re-run.");
  const total = D.dollars.reduce((s, r) => s + r.amount, 0);
  hbars("dollars", D.dollars.map(r => ({label: r.rule, title: `${r.n} findings`, parts: [
    {key: r.amount < 0 ? "billed above the recommended code" : "billed below the recommended code",
     value: Math.abs(r.amount), color: r.amount < 0 ? COLOR.critical : "#2e7d32"}]})), {format: fmt$});
  const p = document.createElement("p"); p.className = "note";
  p.textContent = `Net ${fmt$(total)} (recommended minus billed, national non-facility RVUs x conversion factor; red: overpayment risk, green: undercharged).`;
  box("dollars").appendChild(p);
}

// drill-down table
let sortKey = "date", sortDir = -1;
function rowText(v) { return [v.encounter, v.patient, v.billed.join(" "), v.expected, v.rules.join(" "), v.date].join(" ").toLowerCase(); }
function table() {
  const q = document.getElementById("q").value.trim().toLowerCase();
  const sev = document.getElementById("sevsel").value, rule = document.getElementById("rulesel").value;
  let list = D.visits.filter(v => (!q || rowText(v).includes(q)) && (!rule || v.rules.includes(rule)) &&
    (!sev || (sev === "clean" ? !v.severity : v.severity === sev)));
  list.sort((a, b) => { const x = a[sortKey] ?? "", y = b[sortKey] ?? ""; return (x < y ? -1 : x > y ? 1 : 0) * sortDir; });
  const shown = list.slice(0, 2000);
  const tb = document.querySelector("#visits tbody");
  tb.innerHTML = "";
  for (const v of shown) {
    const tr = document.createElement("tr"); tr.className = "visit";
    const cells = [v.date, v.encounter || "(no encounter)", v.patient || "", v.performer, v.billed.join(", ") || "none",
                   v.expected, v.severity || "clean", v.rules.join(", "), v.amount == null ? "" : fmt$(v.amount)];
    cells.forEach((c, i) => { const td = document.createElement("td"); td.textContent = c;
      if (i === 6) td.className = "sev " + (v.severity || ""); if (i === 8) td.className = "num"; tr.appendChild(td); });
    tr.addEventListener("click", () => toggle(tr, v));
    tb.appendChild(tr);
  }
  document.getElementById("shown").textContent = `${list.length.toLocaleString()} visits` + (list.length > shown.length ? ` (first ${shown.length} shown; filter to narrow)` : "");
}
function toggle(tr, v) {
  if (tr.nextSibling && tr.nextSibling.className === "detail") { tr.nextSibling.remove(); return; }
  const d = document.createElement("tr"); d.className = "detail";
  const td = document.createElement("td"); td.colSpan = 9;
  if (!v.findings.length) td.textContent = "No findings: coded and documented as the rules call for.";
  for (const f of v.findings) {
    const p = document.createElement("div");
    const what = f.kind + (f.code ? ` ${f.code}` : "") + (f.replaces.length ? ` in place of ${f.replaces.join(" + ")}` : "");
    const missing = f.missing.length ? `; missing: ${f.missing.map(m => D.labels[m] || m).join(", ")}` : "";
    p.textContent = `${f.severity.toUpperCase()} ${f.rule} v${f.version} (${D.titles[f.rule] || ""}): ${what}${missing}` + (f.amount == null ? "" : `; est. ${fmt$(f.amount)}`);
    td.appendChild(p);
  }
  d.appendChild(td); tr.after(d);
}
function setupTable() {
  const sel = document.getElementById("rulesel");
  for (const r of Object.keys(D.titles).filter(r => D.perRule.some(p => p.rule === r)))
    sel.insertAdjacentHTML("beforeend", `<option value="${r}">${r}</option>`);
  for (const id of ["q", "sevsel", "rulesel"]) document.getElementById(id).addEventListener("input", table);
  document.querySelectorAll("#visits th").forEach(th => th.addEventListener("click", () => {
    const k = th.dataset.key; sortDir = sortKey === k ? -sortDir : 1; sortKey = k; table(); }));
  if (D.visitsCut) document.getElementById("cut").textContent =
    `The table holds the first ${D.maxVisits.toLocaleString()} visits (those with findings first); visits.parquet and findings.csv hold all.`;
  table();
}

legend(); header(); rulesChart(); monthsChart(); matrixChart(); gapsChart(); performersChart(); dollarsChart(); setupTable();
document.body.dataset.ready = "true";
</script>
</body>
</html>
"""
