// The operator's view: every tenant with its rows and storage, and what the API process
// that answered holds for it (loaded, model bytes, requests, requests refused with 429).
import { get } from "../api.js";
import { card, h, num, table } from "../ui.js";

const mib = (v) => (v === null || v === undefined ? "–" : `${(v / 2 ** 20).toFixed(1)} MiB`);

export async function renderTenants(root, _arg, stale) {
  root.append(h("h1", {}, "Operator: tenants"));
  const data = await get("/v1/operator/tenants");
  if (stale()) return;
  const u = (t) => t.usage || {};
  root.append(card(null, h("p", { class: "muted" },
    "The operator key manages tenants and reads none of their data: sign in with one of a " +
    "tenant's keys to see its dashboard. Loaded, model, requests and rate limited are this API " +
    "process's own counts."),
  h("div", { "data-testid": "tenants" }, table([
    { label: "Tenant", value: (t) => h("span", {}, h("strong", {}, t.id), t.name ? h("div", { class: "muted" }, t.name) : null) },
    { label: "Status", value: (t) => h("span", { class: `badge ${t.status === "active" ? "ok" : "bad"}` }, t.status) },
    { label: "Database", value: (t) => h("code", {}, t.database) },
    { label: "Users", value: (t) => num(u(t).users), num: true },
    { label: "Items", value: (t) => num(u(t).items), num: true },
    { label: "Interactions", value: (t) => num(u(t).interactions), num: true },
    { label: "Storage", value: (t) => mib(u(t).storage_bytes), num: true },
    { label: "Loaded", value: (t) => (u(t).loaded ? "yes" : "no") },
    { label: "Model", value: (t) => mib(u(t).model_bytes), num: true },
    { label: "Requests", value: (t) => num(u(t).requests), num: true },
    { label: "Rate limited", value: (t) => num(u(t).rate_limited), num: true },
  ], data.tenants, "No tenants."))));
}
