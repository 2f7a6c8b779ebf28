import { get, post } from "../api.js";
import { action, card, h, table, when } from "../ui.js";

export async function renderJobs(root, _arg, stale) {
  root.append(h("div", { class: "toolbar" }, h("h1", {}, "Jobs"),
    action("Start backup", async () => {
      const job = await post("/v1/admin/jobs", { name: "backup" });
      window.dispatchEvent(new HashChangeEvent("hashchange"));
      return `started ${job.id}`;
    }, { testid: "start-backup" }),
    action("Start retrain", async () => {
      const job = await post("/v1/admin/jobs", { name: "retrain" });
      window.dispatchEvent(new HashChangeEvent("hashchange"));
      return `started ${job.id}`;
    }, { secondary: true, testid: "start-retrain" })));
  const list = h("div");
  root.append(list);
  async function load() {
    const data = await get("/v1/admin/jobs", { limit: 30 });
    if (stale()) return false;
    list.replaceChildren(card("Recent jobs", table([
      { label: "Job", value: (j) => j.name },
      { label: "Status", value: (j) => h("span", { class: `badge ${j.status === "succeeded" ? "ok" : j.status === "running" ? "" : "bad"}` }, j.status) },
      { label: "Started", value: (j) => when(j.started_at || j.created_at) },
      { label: "Seconds", value: (j) => (j.duration_seconds === null ? "…" : j.duration_seconds.toFixed(1)), num: true },
      { label: "Exit", value: (j) => (j.exit_code === null ? "" : String(j.exit_code)), num: true },
      { label: "Output (tail)", value: (j) => h("code", {}, (j.error || j.output_tail || "").slice(-160)) },
    ], data.items, "No jobs have run yet.")));
    return data.items.some((j) => j.status === "running");
  }
  let running = await load();
  const timer = setInterval(async () => {
    if (!running || document.hidden) return;
    try { running = await load(); } catch { /* shown on the next full render */ }
  }, 3000);
  return () => clearInterval(timer);
}
