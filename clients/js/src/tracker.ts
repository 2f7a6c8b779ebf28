import type { ImportReport, InteractionIn, RejectedRow } from "./api-types.js";
import { isTransient, FastInsightError } from "./errors.js";
import { connection, request, type Connection, type Fetch } from "./http.js";
import { anonymousUserId, defaultStorage, randomId } from "./ids.js";

export interface TrackerOptions {
  url: string;
  /** The API key (today the only non-admin key). Never the admin key in a page. */
  apiKey: string;
  /** The visitor; default: an anonymous id kept in localStorage. */
  userId?: string;
  /** Events per request; a full batch is sent at once (default 20). */
  batchSize?: number;
  /** Longest an event waits before its batch is sent (default 2000 ms). */
  flushIntervalMs?: number;
  /** Events held while they cannot be sent; the oldest are dropped beyond it (default 1000). */
  maxQueue?: number;
  /** First wait after a failed send, doubled each time up to `retryMaxMs` (default 1000). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  timeoutMs?: number;
  /** Listen to page hide (beacon) and `online` (send now). Default: where there is a window. */
  listen?: boolean;
  fetch?: Fetch;
  sendBeacon?: (url: string, data: string) => boolean;
  storage?: Storage | null;
  onError?: (error: unknown) => void;
  onRejected?: (rows: RejectedRow[]) => void;
}

export interface TrackOptions {
  /** The `recommendation_id` of the answer that showed the item (attribution). */
  recommendationId?: string | null;
  value?: number;
  userId?: string;
}

export interface TrackerStats {
  queued: number;
  sent: number;
  rejected: number;
  dropped: number;
  failures: number;
  beacons: number;
}

const QUEUE_KEY = "fastinsight:queue";
const BEACON_EVENTS = 50; // a beacon carries at most ~64 KB in all browsers
const BEACON_BYTES = 60000;

const offline = (): boolean => typeof navigator !== "undefined" && navigator.onLine === false;

/** Queues events and sends them in batches; see the options for when. */
export class Tracker {
  private readonly conn: Connection;
  private readonly opts: Required<Pick<TrackerOptions,
    "batchSize" | "flushIntervalMs" | "maxQueue" | "retryBaseMs" | "retryMaxMs">>;
  private readonly storage: Storage | null;
  private readonly beacon: ((url: string, data: string) => boolean) | null;
  private queue: InteractionIn[] = [];
  private userId: string;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  private sending: Promise<void> | null = null;
  private readonly counts = { sent: 0, rejected: 0, dropped: 0, failures: 0, beacons: 0 };
  private readonly unlisten: Array<() => void> = [];

  constructor(private readonly options: TrackerOptions) {
    this.conn = connection(options.url, options.apiKey, options.timeoutMs, options.fetch);
    this.opts = {
      batchSize: options.batchSize ?? 20, flushIntervalMs: options.flushIntervalMs ?? 2000,
      maxQueue: options.maxQueue ?? 1000, retryBaseMs: options.retryBaseMs ?? 1000,
      retryMaxMs: options.retryMaxMs ?? 60000,
    };
    this.storage = options.storage === undefined ? defaultStorage() : options.storage;
    const nav = typeof navigator !== "undefined" ? navigator : undefined;
    this.beacon = options.sendBeacon ?? (nav?.sendBeacon ? (u, d) => nav.sendBeacon(u, d) : null);
    this.userId = options.userId ?? anonymousUserId(this.storage);
    this.restore();
    if (options.listen ?? typeof window !== "undefined") this.listen();
  }

  /** Record that the visitor did `type` (view, click, add_to_cart, purchase...) on `itemId`. */
  track(type: string, itemId: string, options: TrackOptions = {}): void {
    const event: InteractionIn = {
      user_id: options.userId ?? this.userId, item_id: itemId, type,
      event_id: randomId(), timestamp: new Date().toISOString(),
    };
    if (options.recommendationId) event.recommendation_id = options.recommendationId;
    if (options.value !== undefined) event.value = options.value;
    this.enqueue([event]);
    if (this.queue.length >= this.opts.batchSize) void this.flush();
    else this.schedule(this.opts.flushIntervalMs);
  }

  /** The visitor signed in: later events carry this id. */
  identify(userId: string): void {
    this.userId = userId;
  }

  /** The visitor events are recorded for (ask recommendations for the same id). */
  get user(): string {
    return this.userId;
  }

  /** Send what is queued now; resolves when the queue is sent or a send failed. */
  flush(): Promise<void> {
    this.sending ??= this.sendAll().finally(() => { this.sending = null; });
    return this.sending;
  }

  /** The page is going away: hand the queue to `sendBeacon` (or keep it while offline). */
  flushOnHide(): void {
    this.cancelTimer();
    if (this.queue.length === 0) return;
    if (offline() || !this.beacon) {
      this.persist();
      return;
    }
    while (this.queue.length) {
      const chunk = this.beaconChunk();
      const payload = JSON.stringify({ key: this.conn.apiKey, interactions: chunk });
      if (!this.beacon(`${this.conn.url}/v1/beacon`, payload)) break; // the browser's beacon queue is full
      this.queue.splice(0, chunk.length);
      this.counts.beacons += 1;
    }
    this.persist();
  }

  stats(): TrackerStats {
    return { queued: this.queue.length, ...this.counts };
  }

  /** Stop timers and listeners (events still queued stay in storage for the next page). */
  stop(): void {
    this.cancelTimer();
    this.unlisten.splice(0).forEach((off) => off());
    this.persist();
  }

  private async sendAll(): Promise<void> {
    this.cancelTimer();
    while (this.queue.length) {
      if (offline()) {
        this.counts.failures += 1;
        return this.retryLater(null); // or sooner: the `online` event sends at once
      }
      const batch = this.queue.slice(0, this.opts.batchSize);
      try {
        const report = await request<ImportReport>(this.conn, "POST", "/v1/interactions/batch", { interactions: batch });
        this.remove(batch);
        this.attempt = 0;
        const rejected = report.rejected ?? [];
        this.counts.sent += batch.length - rejected.length;
        this.counts.rejected += rejected.length;
        if (rejected.length) this.options.onRejected?.(rejected);
      } catch (error) {
        if (isTransient(error)) {
          this.counts.failures += 1;
          return this.retryLater(error instanceof FastInsightError ? error.retryAfter : null);
        }
        this.remove(batch); // refused as a whole (a bad key, too large): sending again cannot help
        this.counts.rejected += batch.length;
        this.options.onError?.(error);
      }
    }
  }

  private retryLater(retryAfterSeconds: number | null): void {
    const backoff = Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** this.attempt);
    const jittered = backoff * (0.5 + Math.random() / 2);
    this.attempt += 1;
    this.schedule(Math.max(jittered, (retryAfterSeconds ?? 0) * 1000), true);
  }

  private enqueue(events: InteractionIn[]): void {
    this.queue.push(...events);
    const excess = this.queue.length - this.opts.maxQueue;
    if (excess > 0) {
      this.queue.splice(0, excess);
      this.counts.dropped += excess;
    }
  }

  private remove(batch: InteractionIn[]): void {
    const sent = new Set(batch);
    this.queue = this.queue.filter((event) => !sent.has(event));
  }

  private beaconChunk(): InteractionIn[] {
    const chunk: InteractionIn[] = [];
    let bytes = 100;
    for (const event of this.queue.slice(0, BEACON_EVENTS)) {
      bytes += JSON.stringify(event).length + 1;
      if (chunk.length && bytes > BEACON_BYTES) break;
      chunk.push(event);
    }
    return chunk;
  }

  private schedule(delayMs: number, replace = false): void {
    if (this.timer !== undefined && !replace) return;
    this.cancelTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delayMs);
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private persist(): void {
    if (!this.storage) return;
    try {
      if (this.queue.length) this.storage.setItem(QUEUE_KEY, JSON.stringify(this.queue));
      else this.storage.removeItem(QUEUE_KEY);
    } catch {
      // storage full or blocked: the events are lost with the page
    }
  }

  private restore(): void {
    const saved = this.storage?.getItem(QUEUE_KEY);
    if (!saved) return;
    this.storage?.removeItem(QUEUE_KEY);
    try {
      const events: unknown = JSON.parse(saved);
      if (Array.isArray(events)) {
        this.enqueue(events.filter((e): e is InteractionIn => typeof e?.event_id === "string"));
        this.schedule(0);
      }
    } catch {
      // not ours or damaged: ignored
    }
  }

  private listen(): void {
    const onHide = (): void => this.flushOnHide();
    const onVisibility = (): void => {
      if (document.visibilityState === "hidden") this.flushOnHide();
    };
    const onOnline = (): void => {
      this.attempt = 0;
      void this.flush();
    };
    window.addEventListener("pagehide", onHide);
    document.addEventListener("visibilitychange", onVisibility);
    window.addEventListener("online", onOnline);
    this.unlisten.push(
      () => window.removeEventListener("pagehide", onHide),
      () => document.removeEventListener("visibilitychange", onVisibility),
      () => window.removeEventListener("online", onOnline),
    );
  }
}

export function createTracker(options: TrackerOptions): Tracker {
  return new Tracker(options);
}
