// Real components for the SDK's tests: `livehub serve` processes (the binary the Rust build
// made, or $LIVEHUB_BIN) on free ports, a throwaway redis-server, and tokens signed with the
// hubs' secret. Nothing here is mocked: the tests talk to hubs over real WebSockets.

import { spawn } from "node:child_process";
import { LiveRoom } from "../livehub-client.js";
import { createHmac, randomBytes } from "node:crypto";
import { createServer, connect } from "node:net";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export const SECRET = "sdk-test-secret-0123456789";
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** The livehub binary: $LIVEHUB_BIN, else the workspace's debug (or release) build. */
export function hubBinary() {
  if (process.env.LIVEHUB_BIN) return process.env.LIVEHUB_BIN;
  for (const p of ["target/debug/livehub", "target/release/livehub"]) {
    const full = join(ROOT, p);
    if (existsSync(full)) return full;
  }
  throw new Error("no livehub binary: run `cargo build` or set LIVEHUB_BIN");
}

function b64url(buf) {
  return Buffer.from(buf).toString("base64").replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

/** An HS256 token as the hub expects (docs/protocol.md, Tokens). `ttlS` 0: no exp. */
export function token({ sub, role = "viewer", room, name, ttlS = 3600 }) {
  const claims = { sub, role, room, name: name || sub };
  if (ttlS) claims.exp = Math.floor(Date.now() / 1000) + ttlS;
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const sig = b64url(createHmac("sha256", SECRET).update(`${head}.${body}`).digest());
  return `${head}.${body}.${sig}`;
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A hub process; `url` is its http base. */
export async function startHub(env = {}) {
  const child = spawn(hubBinary(), ["serve"], {
    env: {
      ...process.env,
      RUST_LOG: "warn",
      LIVEHUB_SERVER__BIND: "127.0.0.1:0",
      LIVEHUB_AUTH__SECRET: SECRET,
      LIVEHUB_LIMITS__CONNECTIONS_PER_IP: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stderr.on("data", (d) => {
    log = (log + d).slice(-20000);
  });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`hub did not start:\n${log}`)), 30000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`hub exited with ${code}:\n${log}`));
    });
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return {
    url,
    child,
    log: () => log,
    /** kill -9: the node dies between any two steps. */
    async kill() {
      child.kill("SIGKILL");
      await exited;
    },
    /** SIGTERM: viewers get 1001 and the process exits after its grace. */
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** A throwaway redis-server on a free port (no persistence). */
export async function startRedis() {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  const deadline = Date.now() + 10000;
  for (;;) {
    const up = await new Promise((resolve) => {
      const s = connect(port, "127.0.0.1", () => {
        s.end();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error("redis-server did not start");
    await new Promise((r) => setTimeout(r, 50));
  }
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** The environment of a hub node on `redisUrl` under its own key prefix. */
export function redisEnv(redisUrl, prefix = `sdk${randomBytes(4).toString("hex")}`) {
  return {
    LIVEHUB_INVENTORY__BACKEND: "redis",
    LIVEHUB_REDIS__URL: redisUrl,
    LIVEHUB_REDIS__KEY_PREFIX: prefix,
    LIVEHUB_LIMITS__VIEWER_FRAMES_PER_SEC: "1000",
    LIVEHUB_LIMITS__VIEWER_FRAMES_BURST: "1000",
    LIVEHUB_LIMITS__RESERVE_RATE_PER_SEC: "1000",
    LIVEHUB_LIMITS__RESERVE_BURST: "1000",
  };
}

/** GET/POST against a hub with a bearer token; resolves to {status, body}. */
export async function http(base, path, { tok, method = "GET", body } = {}) {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(tok ? { authorization: `Bearer ${tok}` } : {}),
      ...(body ? { "content-type": "application/json" } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch (_) {}
  return { status: res.status, body: json, text };
}

/** Resolves with the first `type` event of `room` that `pred` accepts (rejects after `ms`). */
export function next(room, type, pred = () => true, ms = 15000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} within ${ms} ms`));
    }, ms);
    const off = room.on(type, (v) => {
      if (!pred(v)) return;
      clearTimeout(timer);
      off();
      resolve(v);
    });
  });
}

/** Resolves once `pred(room.state)` holds: checked now, on every change and every 25 ms (some
 * conditions, such as a token refresh, change no state). */
export function until(room, pred, ms = 15000, what = "state") {
  if (pred(room.state)) return Promise.resolve(room.state);
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!pred(room.state)) return;
      done();
      resolve(room.state);
    };
    const off = room.on("state", check);
    const poll = setInterval(check, 25);
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${what} never held; state: ${JSON.stringify(room.state)}`));
    }, ms);
    const done = () => {
      off();
      clearInterval(poll);
      clearTimeout(timer);
    };
  });
}

// Every room a test connects is closed after it, passed or failed, so a failure cannot leave a
// room reconnecting to a hub that is stopping (and the test file hanging).
const connectedRooms = new Set();
const connectRoom = LiveRoom.prototype.connect;
LiveRoom.prototype.connect = function () {
  connectedRooms.add(this);
  return connectRoom.call(this);
};

/** Closes every room the test connected (use in afterEach). */
export function closeAll() {
  for (const r of connectedRooms) r.close();
  connectedRooms.clear();
}

/** A unique id for a room or deal in one test run. */
export function uid(prefix) {
  return `${prefix}${randomBytes(4).toString("hex")}`;
}
