import { get } from "../api.js";
import { card, errorBox, h, itemLink, score, table, when } from "../ui.js";

function lookup(placeholder, value, onSubmit) {
  const input = h("input", { name: "id", placeholder, value: value || "", "aria-label": placeholder });
  const form = h("form", { class: "toolbar" }, input, h("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.value.trim()) onSubmit(input.value.trim());
  });
  return form;
}

export { lookup };

export async function renderUsers(root, userId, stale) {
  root.append(h("h1", {}, "User"),
    lookup("user id", userId, (id) => { window.location.hash = `#users/${encodeURIComponent(id)}`; }));
  if (!userId) {
    const page = await get("/v1/users", { limit: 10 });
    if (stale()) return;
    root.append(card("Some users", table([
      { label: "User", value: (u) => h("a", { class: "user-link", href: `#users/${encodeURIComponent(u.user_id)}` }, u.user_id) },
      { label: "Attributes", value: (u) => JSON.stringify(u.attributes) },
    ], page.items)));
    return;
  }
  const id = encodeURIComponent(userId);
  const [user, history, recs] = await Promise.allSettled([
    get(`/v1/users/${id}`),
    get(`/v1/users/${id}/interactions`, { limit: 50 }),
    get(`/v1/users/${id}/recommendations`, { k: 10 }),
  ]);
  if (stale()) return;
  if (user.status === "rejected") {
    root.append(errorBox(user.reason));
    return;
  }
  root.append(card(`User ${user.value.user_id}`,
    h("p", { class: "muted" }, `created ${when(user.value.created_at)}`),
    h("pre", {}, JSON.stringify(user.value.attributes, null, 2))));
  const recCard = card("Current recommendations");
  if (recs.status === "fulfilled") {
    recCard.append(h("p", { class: "muted" }, `model ${recs.value.model_version}`), table([
      { label: "#", value: (_r) => String(recs.value.items.indexOf(_r) + 1), num: true },
      { label: "Item", value: (r) => itemLink(r.item_id) },
      { label: "Score", value: (r) => score(r.score), num: true },
      { label: "Why", value: (r) => r.reason },
    ], recs.value.items, "No recommendations."));
  } else {
    recCard.append(errorBox(recs.reason));
  }
  const histCard = card("History (newest first)");
  if (history.status === "fulfilled") {
    histCard.append(table([
      { label: "When", value: (e) => when(e.timestamp) },
      { label: "Type", value: (e) => e.type },
      { label: "Item", value: (e) => itemLink(e.item_id) },
      { label: "Value", value: (e) => (e.value === null ? "" : String(e.value)), num: true },
    ], history.value, "No interactions yet."));
  } else {
    histCard.append(errorBox(history.reason));
  }
  root.append(h("div", { class: "grid" }, recCard, histCard));
}
