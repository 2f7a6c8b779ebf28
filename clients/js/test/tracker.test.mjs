// The tracker against the real server: batching, the flush timer, retries with backoff
// while the network is away, Retry-After, the queue cap, beacons and refused rows.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { createTracker } from "../dist/index.js";
import { KEY, URL, api, events, freePort, startProxy, waitFor } from "./helpers.mjs";

const user = (name) => `js-${name}-${randomUUID().slice(0, 8)}`;
const quiet = { listen: false, storage: null, flushIntervalMs: 60000 };

test("a full batch is sent at once, each event with its own event_id", async () => {
  const userId = user("batch");
  const tracker = createTracker({ ...quiet, url: URL, apiKey: KEY, userId, batchSize: 3 });
  tracker.track("view", "item-000001");
  tracker.track("click", "item-000001", { recommendationId: "rec-1" });
  assert.equal(tracker.stats().queued, 2); // not full: waits for the timer
  tracker.track("purchase", "item-000002", { value: 12.5 });
  await waitFor(() => tracker.stats().sent === 3, "the batch");
  const stored = await events(userId);
  assert.equal(stored.length, 3);
  assert.equal(new Set(stored.map((e) => e.event_id)).size, 3);
  assert.equal(stored.find((e) => e.type === "purchase").value, 12.5);
  tracker.stop();
});

test("the flush timer sends a partial batch", async () => {
  const userId = user("timer");
  const tracker = createTracker({ ...quiet, url: URL, apiKey: KEY, userId, flushIntervalMs: 100 });
  tracker.track("like", "item-000003");
  await waitFor(async () => (await events(userId)).length === 1, "the timed flush");
  tracker.stop();
});

test("while the server cannot be reached events wait, with backoff, and are sent when it can", async () => {
  const port = await freePort(); // nothing listens there yet: the network is away
  const userId = user("offline");
  const tracker = createTracker({ ...quiet, url: `http://127.0.0.1:${port}`, apiKey: KEY, userId,
    batchSize: 2, retryBaseMs: 40, retryMaxMs: 200 });
  tracker.track("view", "item-000004");
  tracker.track("view", "item-000005");
  await waitFor(() => tracker.stats().failures >= 3, "failed attempts");
  assert.equal(tracker.stats().queued, 2);
  const proxy = await startProxy(port); // the network is back
  try {
    await waitFor(() => tracker.stats().sent === 2, "the retried batch");
    assert.equal(tracker.stats().queued, 0);
    assert.equal((await events(userId)).length, 2);
  } finally {
    tracker.stop();
    await proxy.close();
  }
});

test("a 503 is retried after its Retry-After, not sooner", async () => {
  const proxy = await startProxy(await freePort(), ["503:1"]);
  const userId = user("retry-after");
  const tracker = createTracker({ ...quiet, url: proxy.url, apiKey: KEY, userId, batchSize: 1, retryBaseMs: 10 });
  try {
    tracker.track("click", "item-000006");
    await waitFor(() => tracker.stats().sent === 1, "the retried event");
    assert.equal(proxy.seen.length, 2);
    assert.ok(proxy.seen[1].at - proxy.seen[0].at >= 1000, "waited for Retry-After");
    assert.equal(proxy.seen[0].body, proxy.seen[1].body); // the same event_id both times
    assert.equal((await events(userId)).length, 1);
  } finally {
    tracker.stop();
    await proxy.close();
  }
});

test("the queue keeps the newest events up to its cap", async () => {
  const port = await freePort();
  const userId = user("cap");
  const tracker = createTracker({ ...quiet, url: `http://127.0.0.1:${port}`, apiKey: KEY, userId,
    maxQueue: 5, batchSize: 100, retryBaseMs: 40, retryMaxMs: 100 });
  for (let n = 1; n <= 8; n += 1) tracker.track("view", `item-00000${n}`);
  assert.deepEqual([tracker.stats().queued, tracker.stats().dropped], [5, 3]);
  void tracker.flush();
  await waitFor(() => tracker.stats().failures >= 1, "a failed attempt");
  const proxy = await startProxy(port);
  try {
    await waitFor(() => tracker.stats().sent === 5, "the kept events");
    const items = (await events(userId)).map((e) => e.item_id).sort();
    assert.deepEqual(items, ["item-000004", "item-000005", "item-000006", "item-000007", "item-000008"]);
  } finally {
    tracker.stop();
    await proxy.close();
  }
});

test("on page hide the queue goes out as beacons the server accepts", async () => {
  const userId = user("beacon");
  const beacons = [];
  // What a browser's sendBeacon sends for a string: a POST with a text/plain body.
  const sendBeacon = (url, data) => {
    beacons.push(fetch(url, { method: "POST", body: data, headers: { "Content-Type": "text/plain;charset=UTF-8" } }));
    return true;
  };
  const tracker = createTracker({ ...quiet, url: URL, apiKey: KEY, userId, sendBeacon });
  for (let n = 0; n < 60; n += 1) tracker.track("view", `item-0000${String(n % 40).padStart(2, "0")}`);
  tracker.flushOnHide();
  assert.equal(tracker.stats().queued, 0);
  assert.equal(tracker.stats().beacons, 2); // at most 50 events per beacon
  const answers = await Promise.all(beacons);
  assert.deepEqual(answers.map((r) => r.status), [200, 200]);
  await waitFor(async () => (await events(userId)).length === 60, "the beaconed events");
});

test("rows the server refuses are reported; a refused batch is not retried", async () => {
  const userId = user("rejected");
  const refused = [];
  const tracker = createTracker({ ...quiet, url: URL, apiKey: KEY, userId, batchSize: 2,
    onRejected: (rows) => refused.push(...rows) });
  tracker.track("view", "item-000001");
  tracker.track("view", "no-such-item");
  await waitFor(() => refused.length === 1, "the refused row");
  assert.equal(refused[0].row, 2);
  assert.equal(refused[0].errors[0].field, "item_id");
  assert.deepEqual([tracker.stats().sent, tracker.stats().rejected], [1, 1]);

  const errors = [];
  const wrongKey = createTracker({ ...quiet, url: URL, apiKey: "not-the-key", userId, onError: (e) => errors.push(e) });
  wrongKey.track("view", "item-000001");
  await wrongKey.flush();
  assert.equal(errors[0].status, 401);
  assert.deepEqual([wrongKey.stats().queued, wrongKey.stats().failures], [0, 0]);
  assert.equal((await api(`/v1/users/${userId}/interactions`)).body.length, 1);
});

test("events a page could not send are kept in storage and sent by the next page", async () => {
  const userId = user("storage");
  const saved = new Map();
  const storage = {
    getItem: (k) => (saved.has(k) ? saved.get(k) : null),
    setItem: (k, v) => saved.set(k, String(v)),
    removeItem: (k) => saved.delete(k),
  };
  const leaving = createTracker({ ...quiet, url: URL, apiKey: KEY, userId, storage, sendBeacon: undefined });
  leaving.track("view", "item-000010");
  leaving.track("add_to_cart", "item-000010");
  leaving.flushOnHide(); // no sendBeacon here (as in node): kept for the next page
  assert.equal(JSON.parse(saved.get("fastinsight:queue")).length, 2);
  const next = createTracker({ ...quiet, url: URL, apiKey: KEY, userId, storage });
  assert.equal(next.stats().queued, 2);
  await waitFor(() => next.stats().sent === 2, "the restored events");
  assert.equal(saved.has("fastinsight:queue"), false);
  assert.deepEqual((await events(userId)).map((e) => e.type).sort(), ["add_to_cart", "view"]);
  next.stop();
});
