import { download, get, post } from "../api.js";
import { chartBox, doughnut } from "../charts.js";
import { action, getOrNotice, card, errorBox, h, itemLink, num, pct, score, table, userLink, when } from "../ui.js";

function rebuildButton() {
  return action("Rebuild segments", async () => {
    await post("/v1/admin/segments/rebuild", undefined, { wait: true });
    window.dispatchEvent(new HashChangeEvent("hashchange"));
    return "rebuilt";
  }, { secondary: true, testid: "rebuild-segments" });
}

async function showMembers(target, seg) {
  const page = await get(`/v1/segments/${seg.segment_id}/users`, { limit: 20 });
  target.replaceChildren(card(`Members of ${seg.segment_id}: ${seg.label} (most typical first)`,
    table([
      { label: "User", value: (m) => userLink(m.user_id) },
      { label: "Similarity to centre", value: (m) => score(m.similarity), num: true },
    ], page.users),
    action("Download all members as CSV", async () => {
      await download(`/v1/segments/${seg.segment_id}/users`, { limit: 100000 }, `segment-${seg.segment_id}.csv`);
      return "saved";
    }, { secondary: true })));
}

export async function renderSegments(root, _arg, stale) {
  root.append(h("div", { class: "toolbar" }, h("h1", {}, "Segments"), rebuildButton()));
  const data = await getOrNotice(root, get, "/v1/segments");
  if (data === null || stale()) return;
  root.append(h("p", { class: "asof" },
    `Model ${data.model_version}: ${data.k} segments of ${num(data.users)} users, built ${when(data.built_at)}` +
    (data.silhouette === null ? " (k given)" : ` (k chosen by silhouette ${data.silhouette.toFixed(3)})`)));
  const sizes = chartBox("segments-chart");
  const members = h("div");
  root.append(h("div", { class: "grid" },
    card("Segment sizes", sizes.box),
    card("Segments", table([
      { label: "Id", value: (s) => h("a", { href: "#segments", onclick: (e) => { e.preventDefault(); showMembers(members, s).catch((err) => members.replaceChildren(errorBox(err))); } }, s.segment_id) },
      { label: "Label", value: (s) => s.label },
      { label: "Users", value: (s) => `${num(s.size)} (${pct(s.share)})`, num: true },
      { label: "Top categories", value: (s) => s.top_categories.slice(0, 3).map((c) => `${c.category} ${pct(c.share)}`).join(", ") },
      { label: "Top items", value: (s) => h("span", {}, s.top_items.slice(0, 3).flatMap((i, n) => [n ? ", " : "", itemLink(i.item_id)])) },
    ], data.segments))), members);
  doughnut(sizes.canvas, data.segments.map((s) => `${s.segment_id}: ${s.label}`), data.segments.map((s) => s.size));

  const campaigns = await get("/v1/segments/campaigns", { per_segment: 3 });
  if (stale()) return;
  root.append(card("Campaign suggestions: who gets what",
    h("p", { class: "muted" }, "Per segment, the items with the highest mean predicted affinity among members who have not seen them."),
    table([
      { label: "Segment", value: (r) => `${r.segment_id}: ${r.segment_label}` },
      { label: "#", value: (r) => String(r.rank), num: true },
      { label: "Item", value: (r) => itemLink(r.item_id) },
      { label: "Title", value: (r) => r.title },
      { label: "Score", value: (r) => score(r.score), num: true },
      { label: "Reach", value: (r) => num(r.audience), num: true },
    ], campaigns.rows),
    action("Download as CSV", async () => {
      await download("/v1/segments/campaigns", { per_segment: 10 }, "campaigns.csv");
      return "saved";
    }, { secondary: true, testid: "campaigns-csv" })));
}
