// The browser client's reads against the real server (node's test runner).
import assert from "node:assert/strict";
import { test } from "node:test";

import { FastInsightClient, FastInsightError, NetworkError } from "../dist/index.js";
import { KEY, URL, api, freePort } from "./helpers.mjs";

const client = new FastInsightClient({ url: URL, apiKey: KEY });

test("recommend returns typed lists that honour k and the filters", async () => {
  const recs = await client.recommend("user-000001", { k: 5 });
  assert.equal(recs.items.length, 5);
  assert.equal(recs.user_id, "user-000001");
  assert.ok(recs.recommendation_id && recs.model_version);
  for (const item of recs.items) assert.equal(typeof item.score, "number");

  const books = await client.recommend("user-000001", { k: 3, filters: { categories: ["books"], excludeSeen: false } });
  assert.ok(books.items.length > 0);
  for (const item of books.items) {
    assert.ok((await api(`/v1/items/${item.item_id}`)).body.categories.includes("books"), item.item_id);
  }
  const without = await client.recommend("user-000001", { k: 5, filters: { exclude: [recs.items[0].item_id] } });
  assert.ok(!without.items.some((item) => item.item_id === recs.items[0].item_id));
});

test("similar, trending and displayed", async () => {
  const similar = await client.similar("item-000001", { k: 3, userId: "user-000002" });
  assert.equal(similar.items.length, 3);
  assert.ok(similar.recommendation_id);
  const trending = await client.trending({ k: 2, window: "30d" });
  assert.equal(trending.window_days, 30);
  assert.equal(trending.items.length, 2);
  const shown = await client.displayed(similar.recommendation_id, [similar.items[0].item_id]);
  assert.equal(shown.accepted, 1);
});

test("errors carry the status, the code and the field details", async () => {
  await assert.rejects(client.recommend("user-000001", { k: 0 }), (error) => {
    assert.ok(error instanceof FastInsightError);
    assert.equal(error.status, 422);
    assert.equal(error.code, "validation_failed");
    assert.equal(error.details[0].field, "query.k");
    assert.ok(error.requestId);
    return true;
  });
  const stranger = new FastInsightClient({ url: URL, apiKey: "not-the-key" });
  await assert.rejects(stranger.recommend("user-000001"), (error) => error.status === 401);
  const nowhere = new FastInsightClient({ url: `http://127.0.0.1:${await freePort()}`, apiKey: KEY });
  await assert.rejects(nowhere.trending(), (error) => error instanceof NetworkError);
  assert.throws(() => new FastInsightClient({ url: "recs.example", apiKey: KEY }), /http/);
});
