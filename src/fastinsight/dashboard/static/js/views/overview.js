import { get, post } from "../api.js";
import { barChart, chartBox, lineChart } from "../charts.js";
import { action, getOrNotice, asOf, card, errorBox, h, itemLink, num, pct, stat, table, trend } from "../ui.js";

async function waitForRefresh() {
  await post("/v1/admin/insights/refresh");
  for (;;) {
    await new Promise((r) => setTimeout(r, 1500));
    const status = await get("/v1/admin/insights/status");
    if (!status.running) {
      if (status.last_error) throw new Error(status.last_error);
      return "done";
    }
  }
}

function refreshButton() {
  return action("Refresh insights", async () => {
    await waitForRefresh();
    window.dispatchEvent(new HashChangeEvent("hashchange"));
    return "refreshed";
  }, { secondary: true, testid: "refresh-insights" });
}

export async function renderOverview(root, _arg, stale) {
  root.append(h("div", { class: "toolbar" }, h("h1", {}, "Overview"), refreshButton()));
  const overview = await getOrNotice(root, get, "/v1/insights/overview");
  if (overview === null || stale()) return;
  root.append(asOf(overview.computed_at));
  root.append(h("div", { class: "stats" },
    stat("Interactions", num(overview.interactions), "stat-interactions"),
    stat("Users with activity", num(overview.users), "stat-users"),
    stat("Catalogue items", num(overview.items), "stat-items"),
    stat("Active users, 1 / 7 / 30 days",
      `${num(overview.active_users["1d"])} / ${num(overview.active_users["7d"])} / ${num(overview.active_users["30d"])}`),
    stat("Events, last 7 days", num(overview.interactions_7d)),
    stat("…the 7 days before", num(overview.interactions_previous_7d)),
  ));

  const activityCard = card("Activity");
  const granularity = h("select", { "aria-label": "granularity" },
    h("option", { value: "day" }, "per day"), h("option", { value: "week" }, "per week"));
  const days = h("select", { "aria-label": "window" },
    h("option", { value: "30" }, "30 days"), h("option", { value: "90" }, "90 days"),
    h("option", { value: "365" }, "365 days"));
  const { box, canvas } = chartBox("activity-chart");
  activityCard.append(h("div", { class: "toolbar" }, granularity, days), box);
  let chart = null;
  async function drawActivity() {
    const data = await get("/v1/insights/activity", { granularity: granularity.value, days: days.value });
    if (chart) chart.destroy();
    const labels = data.buckets.map((b) => b.start);
    const series = data.types.map((t) => ({ label: t, data: data.buckets.map((b) => b.by_type[t] || 0) }));
    series.push({ label: "active users", data: data.buckets.map((b) => b.active_users), axis: "y2" });
    chart = lineChart(canvas, labels, series);
  }
  granularity.addEventListener("change", drawActivity);
  days.addEventListener("change", drawActivity);

  const [top, cats, funnel, catalogue] = await Promise.all([
    get("/v1/insights/top-items", { days: 7, k: 10 }),
    get("/v1/insights/top-categories", { days: 7, k: 12 }),
    get("/v1/insights/funnel", { days: 30 }),
    get("/v1/insights/catalogue", { days: 30 }),
  ]);
  if (stale()) return;
  const topCard = card("Top items, last 7 days", table([
    { label: "Item", value: (e) => itemLink(e.id) },
    { label: "Title", value: (e) => e.title || "" },
    { label: "Events", value: (e) => num(e.count), num: true },
    { label: "Before", value: (e) => num(e.previous), num: true },
    { label: "Trend", value: trend },
  ], top.entries));
  const catChart = chartBox("categories-chart");
  const funnelChart = chartBox("funnel-chart");
  root.append(activityCard, h("div", { class: "grid" },
    topCard,
    card("Top categories, last 7 days", catChart.box),
    card("Funnel, last 30 days", funnelChart.box, table([
      { label: "Step", value: (s) => s.type },
      { label: "Events", value: (s) => num(s.count), num: true },
      { label: "From previous", value: (s) => pct(s.rate_from_previous), num: true },
      { label: "From first", value: (s) => pct(s.rate_from_first), num: true },
    ], funnel.steps)),
    card("Catalogue health", h("div", { class: "stats" },
      stat("Never interacted", `${num(catalogue.never_interacted)} (${pct(catalogue.never_interacted_share)})`),
      stat("No events in 30 days", num(catalogue.cold_in_window)),
      stat("Events on top 1% items", pct(catalogue.top_1pct_share)),
      stat("Gini", catalogue.gini.toFixed(2)))),
  ));
  barChart(catChart.canvas, cats.entries.map((e) => e.id), [
    { label: "events", data: cats.entries.map((e) => e.count) },
    { label: "previous 7 days", data: cats.entries.map((e) => e.previous) },
  ], { horizontal: true });
  barChart(funnelChart.canvas, funnel.steps.map((s) => s.type), [{ label: "events", data: funnel.steps.map((s) => s.count) }]);
  try {
    await drawActivity();
  } catch (err) {
    activityCard.append(errorBox(err));
  }
}
