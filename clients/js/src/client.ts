import type { DisplayedOut, RecommendationsOut, SimilarOut, TrendingOut } from "./api-types.js";
import { connection, queryString, request, type Connection, type Fetch } from "./http.js";

export interface ClientOptions {
  /** The API's base URL, e.g. `https://recs.shop.example`. */
  url: string;
  /** The API key (today the only non-admin key). Never the admin key in a page. */
  apiKey: string;
  timeoutMs?: number;
  fetch?: Fetch;
}

/** Which items may appear in a list. */
export interface RecommendFilters {
  /** Only items in one of these categories. */
  categories?: readonly string[];
  excludeCategories?: readonly string[];
  /** Item ids to leave out (e.g. what is in the basket). */
  exclude?: readonly string[];
  /** Leave out items the user interacted with (server default: true). */
  excludeSeen?: boolean;
  offset?: number;
}

export interface RecommendOptions {
  /** How many items, 1 to 500 (server default 10). */
  k?: number;
  filters?: RecommendFilters;
}

const path = (value: string): string => encodeURIComponent(value);

/** Reads recommendations. Every answer has a `recommendation_id`: pass it to `track`. */
export class FastInsightClient {
  private readonly conn: Connection;

  constructor(options: ClientOptions) {
    this.conn = connection(options.url, options.apiKey, options.timeoutMs, options.fetch);
  }

  recommend(userId: string, options: RecommendOptions = {}): Promise<RecommendationsOut> {
    const f = options.filters ?? {};
    const query = queryString({
      k: options.k, offset: f.offset, exclude_seen: f.excludeSeen, categories: f.categories,
      exclude_categories: f.excludeCategories, exclude: f.exclude,
    });
    return request(this.conn, "GET", `/v1/users/${path(userId)}/recommendations${query}`);
  }

  similar(itemId: string, options: { k?: number; userId?: string } = {}): Promise<SimilarOut> {
    return request(this.conn, "GET", `/v1/items/${path(itemId)}/similar${queryString({ k: options.k, user_id: options.userId })}`);
  }

  trending(options: { k?: number; window?: string; category?: string; userId?: string } = {}): Promise<TrendingOut> {
    const query = queryString({ k: options.k, window: options.window, category: options.category, user_id: options.userId });
    return request(this.conn, "GET", `/v1/items/trending${query}`);
  }

  /** Which items of an answer the visitor actually saw (when fewer than were asked for). */
  displayed(recommendationId: string, itemIds: readonly string[]): Promise<DisplayedOut> {
    return request(this.conn, "POST", "/v1/impressions",
      { impressions: [{ recommendation_id: recommendationId, item_ids: itemIds }] }, true);
  }
}
