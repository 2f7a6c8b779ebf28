// #experiments: the list, online click-through per model version, a form for a new A/B
// test; #experiments/<id>: its report (verdict, rates with intervals, running lift).
import { get, post } from "../api.js";
import { barChart, chartBox, intervalChart, lineChart } from "../charts.js";
import { action, card, errorBox, h, num, pct, stat, table, when } from "../ui.js";

const METRIC = { ctr: "click-through", conversion: "conversion", value_per_user: "value per user" };
const DECISION = { better: "ok", worse: "bad", sample_ratio_mismatch: "bad" };
const LIFT_CLIP = 3; // the running-lift chart shows -100% .. +300%; wider intervals are cut

const clip = (v) => (v === null || v === undefined ? null : Math.max(-1, Math.min(LIFT_CLIP, v)));
const signed = (v) => (v === null || v === undefined ? "–" : `${v >= 0 ? "+" : ""}${(v * 100).toFixed(1)}%`);
const open = (id) => { window.location.hash = `#experiments/${encodeURIComponent(id)}`; };

function statusBadge(status) {
  return h("span", { class: `badge ${status === "running" ? "ok" : ""}`, "data-testid": "status" }, status);
}

function armChoices(versions) {
  const options = [h("option", { value: "" }, "active version")];
  for (const algo of [...new Set(versions.map((v) => v.algorithm))]) {
    options.push(h("option", { value: `algorithm:${algo}` }, `newest ${algo}`));
  }
  for (const v of versions.filter((v) => v.status === "ready")) {
    options.push(h("option", { value: `version:${v.version}` }, `${v.version} (${v.algorithm})`));
  }
  return options;
}

function arm(name, choice, share) {
  const out = { name, share };
  if (choice.startsWith("algorithm:")) out.algorithm = choice.slice(10);
  if (choice.startsWith("version:")) out.model_version = choice.slice(8);
  return out;
}

async function newExperimentForm() {
  let versions = [];
  try {
    versions = await get("/v1/admin/models");
  } catch (err) {
    return card("New A/B test", h("p", { class: "muted" }, `Creating experiments needs the admin key (${err.message}).`));
  }
  const field = (label, input) => h("label", { class: "field" }, h("span", {}, label), input);
  const name = h("input", { name: "name", value: "A/B test", required: true });
  const a = h("select", { name: "arm-a" }, armChoices(versions));
  const b = h("select", { name: "arm-b" }, armChoices(versions));
  const shareA = h("input", { name: "share-a", type: "number", min: "0.01", max: "0.99", step: "0.01", value: "0.5" });
  const holdout = h("input", { name: "holdout", type: "number", min: "0", max: "0.5", step: "0.01", value: "0" });
  const from = h("input", { name: "traffic-from", type: "number", min: "0", max: "1", step: "0.01", value: "0" });
  const to = h("input", { name: "traffic-to", type: "number", min: "0", max: "1", step: "0.01", value: "1" });
  const metric = h("select", { name: "metric" }, Object.entries(METRIC).map(([k, v]) => h("option", { value: k }, v)));
  const message = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "form-grid", "data-testid": "new-experiment" },
    field("Name", name), field("Arm A serves", a), field("Arm B serves", b), field("Share of A (of the rest)", shareA),
    field("Popularity holdout share", holdout), field("Traffic from", from), field("Traffic to", to),
    field("Primary metric", metric), h("button", { type: "submit" }, "Start experiment"), message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    const held = Number(holdout.value);
    const rest = 1 - held;
    const sa = Math.round(rest * Number(shareA.value) * 1e6) / 1e6;
    const body = {
      name: name.value, primary_metric: metric.value, traffic: [Number(from.value), Number(to.value)],
      variants: [arm("A", a.value, sa), arm("B", b.value, Math.round((rest - sa) * 1e6) / 1e6)],
    };
    if (held > 0) { body.holdout = { share: held }; body.control = "holdout"; }
    try {
      const created = await post("/v1/admin/experiments", body);
      open(created.id);
    } catch (err) {
      message.textContent = err.message;
    }
  });
  return card("New A/B test", h("p", { class: "muted" },
    "Users are split by a salted hash of their id (the same user always gets the same arm). " +
    "Experiments on the same endpoint need disjoint traffic slices or times."), form);
}

async function onlineCard(stale) {
  const online = await get("/v1/insights/online", { days: 14 });
  if (stale()) return null;
  const chart = chartBox("online-ctr-chart");
  const days = [...new Set(online.rows.map((r) => r.day))].sort();
  const versions = [...new Set(online.rows.map((r) => r.model_version))];
  const box = card("Online click-through of recommendations per model version (last 14 days)",
    online.rows.length ? chart.box : h("p", { class: "muted" }, "No recommendations served yet."));
  if (online.rows.length) {
    const at = new Map(online.rows.map((r) => [`${r.day}|${r.model_version}`, r.ctr]));
    barChart(chart.canvas, days, versions.map((v) => ({ label: v, data: days.map((d) => at.get(`${d}|${v}`) ?? null) })));
  }
  return box;
}

async function renderList(root, stale) {
  root.append(h("h1", {}, "Experiments"));
  const list = await get("/v1/experiments");
  if (stale()) return;
  root.append(card("A/B tests", table([
    { label: "Name", value: (e) => h("a", { href: `#experiments/${encodeURIComponent(e.id)}`, class: "experiment-link" }, e.name) },
    { label: "Status", value: (e) => statusBadge(e.status) },
    { label: "Arms", value: (e) => e.variants.map((v) => `${v.name}${v.control ? " (control)" : ""} ${pct(v.share)}`).join(", ") },
    { label: "Metric", value: (e) => METRIC[e.primary_metric] },
    { label: "Traffic", value: (e) => `${pct(e.traffic[0])} – ${pct(e.traffic[1])}` },
    { label: "Started", value: (e) => when(e.start_at) },
    { label: "", value: (e) => (e.status === "running" ? action("Stop", async () => {
      await post(`/v1/admin/experiments/${encodeURIComponent(e.id)}/stop`);
      window.dispatchEvent(new HashChangeEvent("hashchange"));
      return "stopped";
    }, { secondary: true, testid: `stop-${e.id}` }) : "") },
  ], list, "No experiments yet.")));
  const online = await onlineCard(stale);
  if (online === null) return;
  root.append(online);
  const form = await newExperimentForm();
  if (!stale()) root.append(form);
}

async function renderReport(root, id, stale) {
  const report = await get(`/v1/experiments/${encodeURIComponent(id)}/report`);
  if (stale()) return;
  const control = report.arms.find((a) => a.control);
  root.append(h("div", { class: "toolbar" }, h("a", { href: "#experiments" }, "← Experiments"),
    h("h1", {}, report.name), statusBadge(report.status)));
  root.append(h("div", { class: `notice verdict ${DECISION[report.decision] || ""}`, "data-testid": "verdict" },
    h("strong", {}, report.decision.replaceAll("_", " ")), ": ", report.verdict));
  const total = (key) => report.arms.reduce((s, a) => s + a[key], 0);
  root.append(h("div", { class: "stats" },
    stat("Exposures", num(total("exposures")), "stat-exposures"),
    stat("Users", num(total("users"))),
    stat("Attributed clicks (by id / fallback)", `${num(report.attribution.by_id)} / ${num(report.attribution.fallback)}`),
    stat("Sample ratio check", report.srm.p_value === null ? "too few users" : `p = ${report.srm.p_value.toPrecision(2)}`)));

  const metric = report.primary_metric;
  const key = { ctr: "ctr", conversion: "conversion_rate", value_per_user: "value_per_user" }[metric];
  const rates = chartBox("arm-rates-chart");
  const running = chartBox("running-lift-chart");
  root.append(h("div", { class: "grid" },
    card(`${METRIC[metric]} per arm (95% interval)`, rates.box),
    card(`Lift over ${control.name} on the first N exposures (always-valid 95% interval, cut at -100%/+${LIFT_CLIP * 100}%)`, running.box)));
  intervalChart(rates.canvas, report.arms.map((a) => a.name), report.arms.map((a) => a[key].value),
    report.arms.map((a) => a[key].low), report.arms.map((a) => a[key].high), { percent: metric !== "value_per_user" });
  const arms = [...new Set(report.history.map((p) => p.arm))];
  const marks = [...new Set(report.history.map((p) => p.exposures))];
  const at = new Map(report.history.map((p) => [`${p.arm}|${p.exposures}`, p]));
  lineChart(running.canvas, marks.map(String), arms.flatMap((name) => ["lift", "low", "high"].map((part) => ({
    label: `${name} ${part}`, data: marks.map((m) => clip(at.get(`${name}|${m}`)?.[part])),
  }))));

  root.append(card("Arms", table([
    { label: "Arm", value: (a) => `${a.name}${a.control ? " (control)" : ""}` },
    { label: "Exposures", value: (a) => num(a.exposures), num: true },
    { label: "Users", value: (a) => num(a.users), num: true },
    { label: "Clicks", value: (a) => num(a.clicks), num: true },
    { label: "CTR (95%)", value: (a) => `${pct(a.ctr.value)} (${pct(a.ctr.low)}–${pct(a.ctr.high)})`, num: true },
    { label: "Conversion", value: (a) => pct(a.conversion_rate.value), num: true },
    { label: "Value / user", value: (a) => (a.value_per_user.value === null ? "–" : a.value_per_user.value.toFixed(2)), num: true },
    { label: "Lift (always-valid 95%)", value: (a) => (a.vs_control ? `${signed(a.vs_control.lift)} (${signed(a.vs_control.low)} to ${signed(a.vs_control.high)})` : "–"), num: true },
    { label: "p", value: (a) => (a.vs_control && a.vs_control.p_value !== null ? a.vs_control.p_value.toPrecision(2) : "–"), num: true },
    { label: "P(better)", value: (a) => (a.vs_control ? pct(a.vs_control.probability_better) : "–"), num: true },
  ], report.arms)));
  root.append(h("p", { class: "muted", "data-testid": "method" }, report.method,
    ` Computed ${when(report.computed_at)}; clicks count within ${Math.round(report.attribution_window_seconds / 3600)} h of the list.`));
}

export async function renderExperiments(root, id, stale) {
  try {
    if (id) await renderReport(root, id, stale);
    else await renderList(root, stale);
  } catch (err) {
    if (err.status === 404) root.append(errorBox(err));
    else throw err;
  }
}
