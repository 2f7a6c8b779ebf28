export { FastInsightClient, type ClientOptions, type RecommendFilters, type RecommendOptions } from "./client.js";
export { FastInsightError, NetworkError, isTransient } from "./errors.js";
export { Tracker, createTracker, type TrackOptions, type TrackerOptions, type TrackerStats } from "./tracker.js";
export type * from "./api-types.js";
