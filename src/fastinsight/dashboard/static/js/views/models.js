import { get, post } from "../api.js";
import { chartBox, lineChart } from "../charts.js";
import { action, card, h, num, pct, when } from "../ui.js";

const METRICS = ["ndcg@10", "recall@10", "precision@10", "map@10"];

async function activate(version) {
  await post(`/v1/admin/models/${encodeURIComponent(version)}/activate`);
  window.dispatchEvent(new HashChangeEvent("hashchange"));
  return `now serving ${version}`;
}

export async function renderModels(root, _arg, stale) {
  root.append(h("h1", {}, "Models"));
  const data = await get("/v1/insights/models");
  if (stale()) return;
  const versions = data.versions;
  if (!versions.length) {
    root.append(h("div", { class: "notice" }, "No model version yet: start a retrain from the Jobs page."));
    return;
  }
  const activeIndex = versions.findIndex((v) => v.active);
  const previous = activeIndex >= 0 ? versions.slice(activeIndex + 1).find((v) => v.status === "ready") : null;
  root.append(h("div", { class: "toolbar", "data-testid": "active-model" },
    h("span", {}, "Serving: ", h("strong", { "data-testid": "active-version" }, data.active_version || "none")),
    previous ? action(`Roll back to ${previous.version}`, () => activate(previous.version), { testid: "rollback" })
      : h("span", { class: "muted" }, "no older version to roll back to")));

  const chronological = [...versions].reverse();
  const present = METRICS.filter((m) => versions.some((v) => m in v.metrics));
  const chart = chartBox("metrics-chart");
  root.append(card("Offline metrics per version (held-out users)", chart.box));
  lineChart(chart.canvas, chronological.map((v) => v.version), [
    ...present.map((m) => ({ label: m, data: chronological.map((v) => v.metrics[m] ?? null) })),
    { label: "catalogue coverage", data: chronological.map((v) => (v.coverage ? v.coverage.catalogue_coverage : null)) },
  ]);

  const rows = versions.map((v) => h("tr", {},
    h("td", {}, v.version, v.active ? h("span", { class: "badge ok" }, " active") : ""),
    h("td", {}, v.algorithm),
    h("td", {}, when(v.created_at)),
    h("td", {}, v.status),
    h("td", { class: "num" }, num(v.trained_on.interactions)),
    ...present.map((m) => h("td", { class: "num" }, m in v.metrics ? v.metrics[m].toFixed(4) : "–")),
    h("td", { class: "num" }, v.coverage ? pct(v.coverage.catalogue_coverage) : "–"),
    h("td", {}, v.active || v.status !== "ready" ? "" : action("Activate", () => activate(v.version), { secondary: true, testid: `activate-${v.version}` }))));
  root.append(card("Versions (newest first)", h("table", {},
    h("thead", {}, h("tr", {}, ["Version", "Algorithm", "Created", "Status", "Interactions", ...present, "Coverage", ""].map((c) => h("th", {}, c)))),
    h("tbody", {}, rows))));
}
