import { download, get } from "../api.js";
import { action, card, errorBox, h, itemLink, score, table, userLink } from "../ui.js";
import { lookup } from "./users.js";

export async function renderItems(root, itemId, stale) {
  root.append(h("h1", {}, "Item"),
    lookup("item id", itemId, (id) => { window.location.hash = `#items/${encodeURIComponent(id)}`; }));
  if (!itemId) {
    const page = await get("/v1/items", { limit: 10 });
    if (stale()) return;
    root.append(card("Some items", table([
      { label: "Item", value: (i) => itemLink(i.item_id) },
      { label: "Title", value: (i) => i.title },
      { label: "Categories", value: (i) => i.categories.join(", ") },
    ], page.items)));
    return;
  }
  const id = encodeURIComponent(itemId);
  const [item, similar, audience] = await Promise.allSettled([
    get(`/v1/items/${id}`),
    get(`/v1/items/${id}/similar`, { k: 10 }),
    get(`/v1/items/${id}/audience`, { k: 20 }),
  ]);
  if (stale()) return;
  if (item.status === "rejected") {
    root.append(errorBox(item.reason));
    return;
  }
  const it = item.value;
  root.append(card(it.title || it.item_id,
    h("p", {}, it.description),
    h("p", { class: "muted" }, `id ${it.item_id} · categories: ${it.categories.join(", ") || "none"} · tags: ${it.tags.join(", ") || "none"}${it.hidden ? " · hidden" : ""}`)));
  const simCard = card("Similar items");
  if (similar.status === "fulfilled") {
    simCard.append(table([
      { label: "Item", value: (r) => itemLink(r.item_id) },
      { label: "Score", value: (r) => score(r.score), num: true },
      { label: "Why", value: (r) => r.reason },
    ], similar.value.items));
  } else {
    simCard.append(errorBox(similar.reason));
  }
  const audCard = card("Audience: who is most likely to engage");
  if (audience.status === "fulfilled") {
    const a = audience.value;
    audCard.append(
      h("p", { class: "muted" }, `model ${a.model_version}; ${a.excluded} users who already interacted are left out`),
      table([
        { label: "#", value: (m) => String(m.rank), num: true },
        { label: "User", value: (m) => userLink(m.user_id) },
        { label: "Affinity", value: (m) => score(m.score), num: true },
      ], a.users),
      action("Download 1,000 as CSV", async () => {
        await download(`/v1/items/${id}/audience`, { k: 1000 }, `audience-${itemId}.csv`);
        return "saved";
      }, { secondary: true, testid: "audience-csv" }));
  } else {
    audCard.append(errorBox(audience.reason));
  }
  root.append(h("div", { class: "grid" }, simCard, audCard));
}
