// Hash router: #overview, #users[/id], #items[/id], #segments, #models, #experiments[/id], #jobs.
// The operator key (FASTINSIGHT_OPERATOR_KEY) reads no tenant's data: it gets #tenants only.
import { clearKey, get, getKey, isOperator, setKey, setOperator } from "./api.js";
import { destroyAll } from "./charts.js";
import { errorBox, h } from "./ui.js";
import { renderOverview } from "./views/overview.js";
import { renderUsers } from "./views/users.js";
import { renderItems } from "./views/items.js";
import { renderSegments } from "./views/segments.js";
import { renderModels } from "./views/models.js";
import { renderJobs } from "./views/jobs.js";
import { renderExperiments } from "./views/experiments.js";
import { renderTenants } from "./views/tenants.js";

const VIEWS = {
  overview: renderOverview, users: renderUsers, items: renderItems,
  segments: renderSegments, models: renderModels, experiments: renderExperiments, jobs: renderJobs,
};
const view = document.getElementById("view");
const login = document.getElementById("login");
const nav = document.getElementById("nav");
const operatorNav = document.getElementById("operator-nav");
const signout = document.getElementById("signout");
let renderToken = 0;
let cleanup = null;

function showLogin(message) {
  nav.hidden = true;
  operatorNav.hidden = true;
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
  const operator = isOperator();
  login.hidden = true;
  nav.hidden = operator;
  operatorNav.hidden = !operator;
  signout.hidden = false;
  const [asked, ...rest] = (window.location.hash.slice(1) || "overview").split("/");
  const name = operator ? "tenants" : asked;
  if (name !== asked) history.replaceState(null, "", `#${name}`);
  const render = operator ? renderTenants : VIEWS[name] || renderOverview;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === name);
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

// A tenant's key reads its data; the operator key gets 403 there and 200 on the tenant list.
async function keyIsOperator() {
  try {
    await get("/v1/users", { limit: 1 });
    return false;
  } catch (err) {
    if (err.status !== 403) throw err;
    try {
      await get("/v1/operator/tenants", { usage: false });
    } catch {
      throw err;  // e.g. a tracking key: say why the tenant route refused it
    }
    return true;
  }
}

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = document.getElementById("api-key").value.trim();
  setKey(key);
  try {
    setOperator(await keyIsOperator());
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
