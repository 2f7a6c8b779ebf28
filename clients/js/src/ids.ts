/** 128 random bits as hex (`crypto.randomUUID` needs a secure context; this does not). */
export function randomId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The storage to use, or null where there is none (private mode, a worker, node). */
export function defaultStorage(): Storage | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null; // access itself can throw when storage is blocked
  }
}

/** A visitor id kept in storage, so an anonymous visitor stays one user across pages. */
export function anonymousUserId(storage: Storage | null): string {
  const key = "fastinsight:uid";
  const known = storage?.getItem(key);
  if (known) return known;
  const id = `anon-${randomId()}`;
  storage?.setItem(key, id);
  return id;
}
