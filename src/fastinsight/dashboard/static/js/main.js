// Hash router: #overview, #users[/id], #items[/id], #segments, #models, #experiments[/id], #jobs.
import { clearKey, get, getKey, setKey } from "./api.js";
import { destroyAll } from "./charts.js";
import { errorBox, h } from "./ui.js";
import { renderOverview } from "./views/overview.js";
import { renderUsers } from "./views/users.js";
import { renderItems } from "./views/items.js";
import { renderSegments } from "./views/segments.js";
import { renderModels } from "./views/models.js";
import { renderJobs } from "./views/jobs.js";
import { renderExperiments } from "./views/experiments.js";

const VIEWS = {
  overview: renderOverview, users: renderUsers, items: renderItems,
  segments: renderSegments, models: renderModels, experiments: renderExperiments, jobs: renderJobs,
};
const view = document.getElementById("view");
const login = document.getElementById("login");
const nav = document.getElementById("nav");
const signout = document.getElementById("signout");
let renderToken = 0;
let cleanup = null;

function showLogin(message) {
  nav.hidden = true;
  signout.hidden = true;
  view.replaceChildren();
  login.hidden = false;
  const err = document.getElementById("login-error");
  err.hidden = !message;
  err.textContent = message || "";
  document.getElementById("api-key").focus();
}

async function route() {
  if (!getKey()) return showLogin();
  login.hidden = true;
  nav.hidden = false;
  signout.hidden = false;
  const [name, ...rest] = (window.location.hash.slice(1) || "overview").split("/");
  const render = VIEWS[name] || renderOverview;
  for (const a of nav.querySelectorAll("a")) a.classList.toggle("active", a.dataset.view === name);
  if (cleanup) cleanup();
  cleanup = null;
  destroyAll();
  const token = ++renderToken;
  const root = h("div", { "data-view": name });
  view.replaceChildren(root);
  document.body.dataset.state = "loading";
  try {
    cleanup = (await render(root, decodeURIComponent(rest.join("/")), () => token !== renderToken)) || null;
  } catch (err) {
    if (token === renderToken) root.append(errorBox(err));
  }
  if (token === renderToken) document.body.dataset.state = "ready";
}

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = document.getElementById("api-key").value.trim();
  setKey(key);
  try {
    await get("/v1/users", { limit: 1 });
  } catch (err) {
    clearKey();
    return showLogin(err.status === 401 ? "That key was not accepted." : err.message);
  }
  document.getElementById("api-key").value = "";
  route();
});
signout.addEventListener("click", () => { clearKey(); showLogin(); });
window.addEventListener("fastinsight:signed-out", () => showLogin("The key was rejected; enter it again."));
window.addEventListener("hashchange", route);
route();
