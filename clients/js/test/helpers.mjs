// Shared by the node tests: the real server (URL and key from the environment), polling,
// and a local HTTP proxy that can answer as scripted or stand in for a network that
// comes back.
import http from "node:http";
import net from "node:net";

export const URL = process.env.FASTINSIGHT_URL;
export const KEY = process.env.FASTINSIGHT_API_KEY;
if (!URL || !KEY) throw new Error("set FASTINSIGHT_URL and FASTINSIGHT_API_KEY to a running server");

export async function api(path, init = {}) {
  const response = await fetch(URL + path, { ...init, headers: { "X-API-Key": KEY, ...init.headers } });
  return { status: response.status, body: await response.json() };
}

export async function waitFor(check, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const events = async (userId) => (await api(`/v1/users/${encodeURIComponent(userId)}/interactions`)).body;

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Forwards to the real server; each request first takes the next scripted action:
// "503:1" answers 503 with Retry-After: 1 (any status and delay).
export function startProxy(port, script = []) {
  const seen = [];
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    seen.push({ method: req.method, path: req.url, at: Date.now(), body: body.toString() });
    const action = script.shift();
    if (action) {
      const [status, delay] = action.split(":");
      const headers = { "content-type": "application/json" };
      if (delay !== undefined) headers["retry-after"] = delay;
      res.writeHead(Number(status), headers);
      res.end(JSON.stringify({ error: "scripted", message: `scripted ${status}`, details: [], request_id: null }));
      return;
    }
    const headers = { ...req.headers };
    delete headers.host;
    delete headers["content-length"];
    const upstream = await fetch(URL + req.url, {
      method: req.method, headers, body: ["GET", "HEAD"].includes(req.method) ? undefined : body,
    });
    res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "text/plain" });
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  return new Promise((resolve) => {
    server.listen(port, "127.0.0.1", () => resolve({
      url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((done) => server.close(done)),
    }));
  });
}
