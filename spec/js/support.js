'use strict';
// Test support shared by spec/js and spec/browser: a real redis-server and the real ferrocable
// binary, each on a free port with its own temporary directory, HS256 tokens minted
// independently of the server, and small waiting helpers. Nothing here touches the client
// libraries under test.

const { spawn, execFile } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const ROOT = path.resolve(__dirname, '..', '..');
const BINARY = process.env.FERROCABLE_BIN || path.join(ROOT, 'target', 'debug', 'ferrocable');
const SECRET = 'js-spec-secret-key-base-0123456789abcdef';
const ORIGIN = 'http://app.test';

// Every child we start, so a crashed test never leaves a server or redis behind.
const children = new Set();
function killChildren() {
  for (const child of children) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killChildren);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killChildren();
    process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `fn` until it returns a truthy value; throws `message` (plus `details()`) on timeout. */
async function waitFor(fn, { timeout = 5000, interval = 10, message = 'condition', details } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) {
      const extra = details ? `\n${details()}` : '';
      throw new Error(`timed out after ${timeout} ms waiting for ${message}${extra}`);
    }
    await sleep(interval);
  }
}

/**
 * A port free on every address. Asked of 0.0.0.0, not 127.0.0.1: ferrocable binds 0.0.0.0,
 * and a port free on 127.0.0.1 can still be held on 127.0.0.2-8 (a load test's client sockets
 * held a third of them, and five picks in a row collided).
 */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '0.0.0.0', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Whether `err` says a port was taken: Node's EADDRINUSE, or a child's log saying so. */
function addressInUse(err) {
  return Boolean(err) && (err.code === 'EADDRINUSE' || /EADDRINUSE|Address already in use/i.test(String(err.message)));
}

/**
 * `start(port)` on a port that was free when picked. A free port is only a hint: another
 * process (a parallel test, a benchmark) can bind it before `start` does. Then `start` runs
 * again on another port, up to `attempts` times in all, and stderr says so; any other failure
 * is thrown at once. `pick` chooses the ports (the spec of this helper hands it a taken one).
 */
async function onFreePort(what, start, { attempts = 5, pick = freePort } = {}) {
  for (let attempt = 1; ; attempt += 1) {
    const port = await pick();
    try {
      return await start(port);
    } catch (err) {
      if (attempt >= attempts || !addressInUse(err)) throw err;
      process.stderr.write(`${what}: port ${port} was taken before it could be bound; trying another (${attempt + 1} of ${attempts})\n`);
    }
  }
}

/**
 * `server.listen` on loopback as a promise that rejects on an error (EADDRINUSE above all)
 * instead of never settling. Port 0, the default, lets the kernel pick a free port: no race.
 */
function listen(server, port = 0) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function tempDir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ferrocable-js-${tag}-`));
}

function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 10000, ...opts }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\nstdout: ${stdout}\nstderr: ${stderr}`;
        reject(err);
      } else {
        resolve(stdout);
      }
    });
  });
}

function base64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

/** An HS256 JWT, signed here (not by the server) so the server's verification is what is tested. */
function mintToken(claims, secret = SECRET) {
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = base64url(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims }));
  const sig = base64url(crypto.createHmac('sha256', secret).update(`${header}.${body}`).digest());
  return `${header}.${body}.${sig}`;
}

/** A token with a valid shape but a signature made with the wrong secret. */
function badSignatureToken(claims) {
  return mintToken(claims, `${SECRET}-not-the-server-secret`);
}

/** A real redis-server on a free loopback port, no persistence. */
class Redis {
  static start() {
    return onFreePort('redis-server', (port) => Redis.startOn(port));
  }

  static async startOn(port) {
    const dir = tempDir('redis');
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', dir, '--logfile', '',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const redis = new Redis(child, port, dir);
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    try {
      // Ready by its own log, not by a PONG alone: on a port someone else took, the PONG
      // could come from their server while ours fails to bind.
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited: ${out}`);
        if (!out.includes('Ready to accept connections')) return false;
        try {
          return (await redis.cli('PING')).trim() === 'PONG';
        } catch {
          return false;
        }
      }, { timeout: 10000, interval: 50, message: 'redis-server', details: () => out });
    } catch (err) {
      await redis.stop();
      throw err;
    }
    return redis;
  }

  constructor(child, port, dir) {
    this.child = child;
    this.port = port;
    this.dir = dir;
    this.url = `redis://127.0.0.1:${port}/0`;
  }

  cli(...args) {
    return run('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...args]);
  }

  /** PUBLISH as Rails' Redis adapter does; returns how many subscribers Redis delivered to. */
  async publish(channel, payload) {
    const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
    return Number((await this.cli('PUBLISH', channel, text)).trim());
  }

  /**
   * SUBSCRIBEs to `channel` on a raw connection and collects the payloads published to it
   * (a minimal RESP reader: the replies are arrays of bulk strings and integers).
   */
  async subscribe(channel) {
    const sock = net.connect(this.port, '127.0.0.1');
    const messages = [];
    let buf = Buffer.alloc(0);
    let ready;
    const subscribed = new Promise((resolve) => { ready = resolve; });
    const parse = (b, i) => {
      const eol = b.indexOf('\r\n', i);
      if (eol < 0) return null;
      const kind = String.fromCharCode(b[i]);
      const head = b.toString('utf8', i + 1, eol);
      if (kind === ':' || kind === '+') return { value: head, next: eol + 2 };
      if (kind === '$') {
        const len = Number(head);
        if (b.length < eol + 2 + len + 2) return null;
        return { value: b.toString('utf8', eol + 2, eol + 2 + len), next: eol + 2 + len + 2 };
      }
      if (kind === '*') {
        const out = [];
        let at = eol + 2;
        for (let k = 0; k < Number(head); k += 1) {
          const item = parse(b, at);
          if (!item) return null;
          out.push(item.value);
          at = item.next;
        }
        return { value: out, next: at };
      }
      throw new Error(`unexpected RESP reply: ${b.toString('utf8', i)}`);
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const item = parse(buf, 0);
        if (!item) break;
        buf = buf.subarray(item.next);
        if (item.value[0] === 'subscribe') ready();
        if (item.value[0] === 'message') messages.push({ channel: item.value[1], payload: item.value[2] });
      }
    });
    const enc = (s) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
    sock.write(`*2\r\n${enc('SUBSCRIBE')}${enc(channel)}`);
    await subscribed;
    return { messages, close: () => sock.destroy() };
  }

  async stop() {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    children.delete(this.child);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The real ferrocable binary. `config` is TOML text written to a temp file, or `configFile` an
 * existing file. Only PATH, SECRET_KEY_BASE (unless given) and `env` reach the process.
 */
class Server {
  static async start({ config, configFile, env = {}, port = 0, args = [], tag = 'server' } = {}) {
    const dir = tempDir(tag);
    let file = configFile;
    if (!file) {
      file = path.join(dir, 'ferrocable.toml');
      fs.writeFileSync(file, config);
    }
    const argv = ['--config', file, '--log-format', 'json'];
    if (port !== null) argv.push('--port', String(port));
    argv.push(...args);
    const child = spawn(BINARY, argv, {
      env: { PATH: process.env.PATH, SECRET_KEY_BASE: SECRET, RUST_LOG: 'info', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.add(child);
    const server = new Server(child, dir);
    try {
      await waitFor(() => child.exitCode !== null || server.address, {
        timeout: 15000, interval: 20, message: 'ferrocable to listen', details: () => server.logText(),
      });
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    if (child.exitCode !== null) {
      // Its last lines (why it exited: "Address already in use", say) may still be in the pipe.
      await server.logsRead;
      const error = new Error(`ferrocable exited with ${child.exitCode}:\n${server.logText()}`);
      children.delete(child);
      fs.rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    return server;
  }

  constructor(child, dir) {
    this.child = child;
    this.dir = dir;
    this.logs = [];
    this.address = null;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const lines = readline.createInterface({ input: child.stderr });
    this.logsRead = new Promise((resolve) => lines.once('close', resolve));
    lines.on('line', (line) => {
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        entry = { level: 'RAW', message: line };
      }
      this.logs.push(entry);
      if (!this.address && entry.message === 'ferrocable listening') this.address = entry.address;
    });
  }

  get port() { return Number(this.address.split(':').pop()); }
  get httpBase() { return `http://${this.address}`; }
  cableUrl(query = {}) {
    const qs = new URLSearchParams(query).toString();
    return `ws://${this.address}/cable${qs ? `?${qs}` : ''}`;
  }

  logText() {
    return this.logs.map((l) => JSON.stringify(l)).join('\n');
  }

  /** Log entries at WARN or ERROR (or unparsable lines). */
  problems() {
    return this.logs.filter((l) => l.level === 'WARN' || l.level === 'ERROR' || l.level === 'RAW');
  }

  request(method, urlPath, body) {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(`${this.httpBase}${urlPath}`, {
        method,
        headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
      });
      req.on('error', reject);
      if (data) req.write(data);
      req.end();
    });
  }

  async health() {
    const res = await this.request('GET', '/health');
    return { status: res.status, body: JSON.parse(res.text) };
  }

  /** POST /_broadcast from loopback; `data` is serialised to JSON text as the API expects. */
  async broadcast(stream, data) {
    const res = await this.request('POST', '/_broadcast', { stream, data: JSON.stringify(data) });
    if (res.status < 200 || res.status > 299) throw new Error(`/_broadcast answered ${res.status}: ${res.text}`);
    return JSON.parse(res.text);
  }

  signal(name) {
    this.child.kill(name);
  }

  /** SIGTERM (or `signal`) and wait for the exit; returns { code, signal }. */
  async stop(signal = 'SIGTERM', timeout = 15000) {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeout);
    const result = await this.exited;
    clearTimeout(timer);
    if (process.env.FERROCABLE_SPEC_LOGS) process.stderr.write(`--- ferrocable log (${this.dir})\n${this.logText()}\n`);
    children.delete(this.child);
    fs.rmSync(this.dir, { recursive: true, force: true });
    return result;
  }
}

/**
 * Records the callbacks of one Action Cable subscription (or any event source) with arrival
 * times, and waits for them.
 */
class Recorder {
  constructor(name = 'recorder') {
    this.name = name;
    this.events = [];
  }

  push(kind, data) {
    this.events.push({ kind, data, at: Date.now() });
  }

  of(kind) {
    return this.events.filter((e) => e.kind === kind);
  }

  received() {
    return this.of('received').map((e) => e.data);
  }

  /** Waits for an event of `kind` whose data satisfies `pred`; returns it. */
  wait(kind, pred = () => true, timeout = 5000) {
    return waitFor(() => this.events.find((e) => e.kind === kind && pred(e.data)), {
      timeout,
      message: `${this.name}: ${kind}`,
      details: () => `events: ${JSON.stringify(this.events)}`,
    });
  }

  /** The Action Cable subscription mixin: every callback is recorded. */
  mixin(extra = {}) {
    const rec = this;
    return {
      connected(info) { rec.push('connected', info); },
      disconnected(info) { rec.push('disconnected', info); },
      rejected() { rec.push('rejected'); },
      received(message) { rec.push('received', message); },
      ...extra,
    };
  }
}

/**
 * `ws` with the Origin a browser would send, recording every frame and close on `frames`.
 * Passed to the client libraries as their WebSocket implementation; the libraries themselves are
 * untouched.
 */
function tappedWebSocket(origin = ORIGIN, frames = []) {
  const WS = require('ws');
  class TappedWebSocket extends WS {
    constructor(url, protocols, options) {
      super(url, protocols, { ...(options || {}), origin });
      const entry = { url: String(url), offered: protocols, frames: [], opened: false, close: null };
      frames.push(entry);
      this.on('open', () => { entry.opened = true; entry.protocol = this.protocol; });
      this.on('message', (data) => entry.frames.push(data.toString('utf8')));
      this.on('close', (code, reason) => { entry.close = { code, reason: reason.toString('utf8') }; });
    }
  }
  return TappedWebSocket;
}

module.exports = {
  ROOT, BINARY, SECRET, ORIGIN,
  sleep, waitFor, freePort, addressInUse, onFreePort, listen, tempDir, run, mintToken, badSignatureToken,
  Redis, Server, Recorder, tappedWebSocket,
};
