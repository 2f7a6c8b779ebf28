// The demo shop: recommendations for the visitor, a click tracked with the list's
// recommendation_id, the queue sent in batches and by beacon when the page is left.
import { FastInsightClient, createTracker } from "../dist/index.js";

const config = new URLSearchParams(location.hash.slice(1));
const url = config.get("api") ?? "http://127.0.0.1:8000";
const apiKey = config.get("key") ?? "";
const tracker = createTracker({
  url, apiKey, userId: config.get("user") ?? undefined,
  flushIntervalMs: Number(config.get("flush") ?? 2000),
});
window.fastinsightTracker = tracker; // for the browser test and the console

const client = new FastInsightClient({ url, apiKey });
const list = document.querySelector("[data-testid=recommendations]");
const status = document.querySelector("[data-testid=status]");
document.querySelector("[data-testid=visitor]").textContent = `Visitor ${tracker.user}`;

try {
  const recs = await client.recommend(tracker.user, { k: 4 });
  for (const item of recs.items) {
    const entry = document.createElement("li");
    const name = document.createElement("strong");
    name.textContent = item.item_id;
    const why = document.createElement("p");
    why.textContent = item.reason;
    const buy = document.createElement("button");
    buy.textContent = "View";
    buy.dataset.item = item.item_id;
    buy.addEventListener("click", () => {
      tracker.track("click", item.item_id, { recommendationId: recs.recommendation_id });
      status.textContent = `clicked ${item.item_id} (list ${recs.recommendation_id})`;
    });
    entry.append(name, why, buy);
    list.append(entry);
  }
  list.dataset.recommendationId = recs.recommendation_id ?? "";
  list.dataset.variant = recs.variant ?? "";
  status.textContent = recs.variant ? `experiment arm ${recs.variant}` : "no experiment";
} catch (error) {
  status.textContent = `could not load recommendations: ${error.message}`;
}
