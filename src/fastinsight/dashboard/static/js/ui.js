// Small DOM helpers: element builder, tables, stat tiles and the "as of" line.
/** GET a path; on 404 show the server's hint (e.g. "no insights yet") and return null. */
export async function getOrNotice(root, getter, path) {
  try {
    return await getter(path);
  } catch (err) {
    if (err.status === 404) {
      root.append(h("div", { class: "notice" }, err.message));
      return null;
    }
    throw err;
  }
}

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const NUM = new Intl.NumberFormat();
export const num = (v) => (v === null || v === undefined ? "–" : NUM.format(v));
export const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
export const score = (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(3));

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString();
}

export function ago(iso) {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

export function asOf(computedAt) {
  return h("p", { class: "asof", "data-testid": "as-of" },
    `Numbers as of ${when(computedAt)} (${ago(computedAt)}); events recorded later appear after the next refresh.`);
}

// columns: [{label, value: row => node|string, num: bool}]
export function table(columns, rows, empty = "Nothing to show.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null }, c.label)))),
    h("tbody", {}, rows.map((r) => h("tr", {},
      columns.map((c) => h("td", { class: c.num ? "num" : null }, c.value(r)))))));
}

export function stat(label, value, testid) {
  return h("div", { class: "stat", "data-testid": testid },
    h("div", { class: "value" }, value), h("div", { class: "label" }, label));
}

export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...children);
}

export function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, err && err.message ? err.message : String(err));
}

export function trend(entry) {
  const arrow = { rising: "▲", falling: "▼", new: "★", steady: "→" }[entry.trend] || "";
  const change = entry.change === null ? "" : ` ${(entry.change * 100).toFixed(0)}%`;
  return h("span", { class: entry.trend }, `${arrow} ${entry.trend}${change}`);
}

export const itemLink = (id) => h("a", { class: "item-link", href: `#items/${encodeURIComponent(id)}` }, id);
export const userLink = (id) => h("a", { class: "user-link", href: `#users/${encodeURIComponent(id)}` }, id);

// Runs an async action from a button, disabling it meanwhile and reporting errors next to it.
export function action(label, fn, { secondary = false, testid } = {}) {
  const out = h("span", { class: "muted" });
  const btn = h("button", { type: "button", class: secondary ? "secondary" : null, "data-testid": testid });
  btn.textContent = label;
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    out.className = "muted";
    out.textContent = " working…";
    try {
      const msg = await fn();
      out.textContent = msg ? ` ${msg}` : "";
    } catch (err) {
      out.className = "error";
      out.textContent = ` ${err.message}`;
    } finally {
      btn.disabled = false;
    }
  });
  return h("span", {}, btn, out);
}
