// Turbo Streams in Debian's Chromium: @hotwired/turbo and turbo-rails' <turbo-cable-stream-source>
// from npm, unmodified, against ferrocable running config/examples/turbo.toml on the four
// variables a Turbo-only Rails app has (SECRET_KEY_BASE, REDIS_URL, PORT,
// FERROCABLE_REDIS__CHANNEL_PREFIX). The page comes from a small app server that plays the Rails
// app: it renders the signed names real Rails 7.2 made into the page (as turbo_stream_from
// does) and proxies /cable to ferrocable, so the socket is same-origin, as behind nginx.
//
// The PUBLISHes are the exact bytes Rails' broadcast_append/prepend/replace/update/remove/
// refresh_to published in fixtures/transcripts/rails-7.2/turbo_stream_actions.json. Each must
// change the DOM as Turbo defines; a forged signed name never connects; PUBLISH -> DOM mutation
// latency is measured and printed (not asserted beyond a sanity bound: benchmarks show speed).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './chromium.mjs';

const require = createRequire(import.meta.url);
const { ROOT, Redis, Server, onFreePort, listen, waitFor } = require('../../js/support.js');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.resolve(HERE, '..', 'dist');
const SHOTS = path.resolve(HERE, '..', 'screenshots');
const TRANSCRIPT = JSON.parse(fs.readFileSync(
  path.join(ROOT, 'fixtures/transcripts/rails-7.2/turbo_stream_actions.json'), 'utf8'));
const PROBES = 30;

// What Rails signed and published in that session.
const BOARD = JSON.parse(JSON.parse(TRANSCRIPT.steps.find((s) => s.op === 'send').text).identifier).signed_stream_name;
const FORGED = BOARD.slice(0, -1) + (BOARD.endsWith('0') ? '1' : '0');
const PUBLISHES = TRANSCRIPT.steps.filter((s) => s.op === 'publish');
const CHANNEL = PUBLISHES[0].channel;
const PREFIX = CHANNEL.slice(0, CHANNEL.indexOf(':'));

/** ActiveSupport::JSON.encode of a string: JSON with <>& and U+2028/9 as \u escapes. */
function activeSupportString(text) {
  return JSON.stringify(text)
    .replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** The payload broadcast_append_to(stream, target:, html:) publishes (attributes need no escaping here). */
function appendPayload(target, html) {
  return activeSupportString(`<turbo-stream action="append" target="${target}"><template>${html}</template></turbo-stream>`);
}

/** A held-open Redis connection: PUBLISH with no process start in the measured path. */
async function publisher(port) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  let buf = '';
  const waiting = [];
  sock.on('data', (d) => {
    buf += d.toString('utf8');
    let eol;
    while ((eol = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, eol);
      buf = buf.slice(eol + 2);
      waiting.shift()(Number(line.slice(1)));
    }
  });
  const enc = (s) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  return {
    publish(channel, payload) {
      return new Promise((resolve) => {
        waiting.push(resolve);
        sock.write(`*3\r\n${enc('PUBLISH')}${enc(channel)}${enc(payload)}`);
      });
    },
    close: () => sock.destroy(),
  };
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };

/** The "Rails app": renders the room page (signed names filled in) and proxies /cable. */
function startApp(cablePort) {
  const template = fs.readFileSync(path.join(DIST, 'turbo.html'), 'utf8');
  const app = { renders: 0, upgrades: 0 };
  const server = http.createServer((req, res) => {
    const urlPath = new URL(req.url, 'http://x').pathname;
    if (urlPath === '/') {
      app.renders += 1;
      const page = template.replaceAll('{{BOARD}}', BOARD).replaceAll('{{FORGED}}', FORGED)
        .replaceAll('{{RENDER}}', String(app.renders));
      res.writeHead(200, { 'content-type': TYPES['.html'], 'cache-control': 'no-store' });
      res.end(page);
      return;
    }
    if (urlPath === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    const file = path.join(DIST, urlPath);
    if (!file.startsWith(DIST) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  // A reverse proxy's job, Host header and all: ferrocable sees the page's own origin.
  server.on('upgrade', (req, socket, head) => {
    if (new URL(req.url, 'http://x').pathname !== '/cable') {
      socket.destroy();
      return;
    }
    app.upgrades += 1;
    const upstream = net.connect(cablePort, '127.0.0.1', () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  // On a port the kernel picks: no port to lose to another process.
  return listen(server).then(() => ({ server, app }));
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

describe('Turbo Streams in Chromium against ferrocable (config/examples/turbo.toml)', () => {
  let redis;
  let server;
  let app;
  let appServer;
  let appPort;
  let browser;
  let context;
  let pub;

  before(async () => {
    assert.ok(fs.existsSync(path.join(DIST, 'turbo.html')), 'build the pages first (npx vite build)');
    redis = await Redis.start();
    // PORT is chosen before the server starts: if another process takes it first, the server
    // cannot bind and is started again on another.
    let cablePort;
    server = await onFreePort('ferrocable', (port) => {
      cablePort = port;
      return Server.start({
        configFile: path.join(ROOT, 'config', 'examples', 'turbo.toml'),
        port: null,
        tag: 'turbo',
        env: {
          SECRET_KEY_BASE: TRANSCRIPT.secret_key_base,
          REDIS_URL: redis.url,
          PORT: String(port),
          FERROCABLE_REDIS__CHANNEL_PREFIX: PREFIX,
        },
      });
    });
    assert.equal(server.port, cablePort);
    ({ server: appServer, app } = await startApp(cablePort));
    appPort = appServer.address().port;
    pub = await publisher(redis.port);
    browser = await launchChromium('chromium-turbo', { width: 900, height: 760 });
    ({ context } = browser);
  });

  after(async () => {
    try {
      if (pub) pub.close();
      if (browser) await browser.close();
      if (appServer) await new Promise((resolve) => appServer.close(resolve));
    } finally {
      try {
        if (server) await server.stop();
      } finally {
        if (redis) await redis.stop();
      }
    }
  });

  it('every broadcast_*_to Rails published changes the DOM as Turbo defines; a forged name never connects', async (t) => {
    // The payload builder used for the latency probes writes what Rails wrote.
    assert.equal(appendPayload('x', '<p>first</p>'), activeSupportString('<turbo-stream action="append" target="x"><template><p>first</p></template></turbo-stream>'));
    const prepend = PUBLISHES.find((p) => p.payload.includes('action=\\"prepend\\"'));
    assert.equal(activeSupportString('<turbo-stream action="prepend" target="messages"><template><p>first</p>\n<p>second</p></template></turbo-stream>'), prepend.payload);

    const page = await context.newPage();
    const consoleErrors = [];
    page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
    page.on('pageerror', (err) => consoleErrors.push(String(err)));
    await page.goto(`http://127.0.0.1:${appPort}/`);

    // The real element subscribed with the identifier Turbo builds (data-room-name included).
    await page.waitForSelector('#board-source[connected]', { state: 'attached', timeout: 5000 });
    await waitFor(() => server.logs.some((l) => l.message === 'subscription rejected' && /bad_signature/.test(l.cause || '')),
      { timeout: 5000, message: 'the forged name to be rejected', details: () => server.logText() });
    assert.equal(await page.getAttribute('#forged-source', 'connected'), null);
    await page.evaluate(() => {
      window.__forgedMessages = 0;
      document.getElementById('forged-source').addEventListener('message', () => { window.__forgedMessages += 1; });
    });
    const health = await server.health();
    assert.equal(health.body.connections, 1);
    assert.equal(app.upgrades, 1, 'one socket for both elements');

    const byAction = (action) => PUBLISHES.filter((p) => p.payload.includes(`action=\\"${action}\\"`));
    const publish = async (step) => assert.equal(await pub.publish(step.channel, step.payload), 1);
    const text = (selector) => page.$eval(selector, (e) => e.textContent);

    // append: the message goes to the end of #messages, its text exactly what Rails sent.
    await publish(byAction('append')[0]);
    await page.waitForSelector('#messages > #message_7:last-child', { timeout: 2000 });
    assert.equal(await text('#message_7'), 'Hi & bye, café 😀 “quoted” \u2028 \'single\'');
    assert.equal(await page.$eval('#message_7 b', (e) => e.textContent), 'bye');

    // prepend: two paragraphs before everything else.
    await publish(byAction('prepend')[0]);
    await page.waitForSelector('#messages > p:first-child', { timeout: 2000 });
    assert.deepEqual(await page.$$eval('#messages > *', (els) => els.map((e) => e.id || e.textContent)),
      ['first', 'second', 'message_1', 'message_7']);

    // replace: a new element takes the old one's place.
    await page.evaluate(() => { window.__old7 = document.getElementById('message_7'); });
    await publish(byAction('replace')[0]);
    await page.waitForFunction(() => !document.contains(window.__old7) && document.getElementById('message_7'), null, { timeout: 2000 });

    // update with targets (a CSS selector): only the matching <li>'s content changes.
    await publish(byAction('update')[0]);
    await page.waitForSelector(".unread > li[data-x='1'] > span", { timeout: 2000 });
    assert.deepEqual(await page.$$eval('.unread > li', (els) => els.map((e) => e.innerHTML)), ['<span>3</span>', '0']);
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'turbo.png'), fullPage: true });

    // remove.
    await publish(byAction('remove')[0]);
    await page.waitForSelector('#message_7', { state: 'detached', timeout: 2000 });

    // refresh: Turbo fetches the page again and renders it (render #2), and the new stream
    // source subscribes again; then the one with a request-id Turbo did not make (render #3).
    const [plain, withRequestId] = byAction('refresh');
    assert.ok(withRequestId.payload.includes('request-id'));
    await publish(plain);
    await page.waitForSelector('#render[data-render="2"]', { timeout: 5000 });
    await page.waitForSelector('#board-source[connected]', { state: 'attached', timeout: 5000 });
    assert.deepEqual(await page.$$eval('#messages > *', (els) => els.map((e) => e.id)), ['message_1'], 'the page as rendered');
    await publish(withRequestId);
    await page.waitForSelector('#render[data-render="3"]', { timeout: 5000 });
    await page.waitForSelector('#board-source[connected]', { state: 'attached', timeout: 5000 });

    // PUBLISH -> DOM mutation, through Redis, ferrocable, the socket, Turbo and the DOM.
    await page.evaluate(() => {
      window.__forgedMessages = 0;
      document.getElementById('forged-source').addEventListener('message', () => { window.__forgedMessages += 1; });
      // When the frame reached the element (before Turbo waits for an animation frame to render).
      window.__received = {};
      document.getElementById('board-source').addEventListener('message', (event) => {
        const probe = /id="(probe_\d+)"/.exec(event.data);
        if (probe) window.__received[probe[1]] = Date.now();
      });
    });
    const latencies = [];
    const frames = [];
    for (let i = 0; i < PROBES; i += 1) {
      const id = `probe_${i}`;
      const payload = appendPayload('messages', `<div id="${id}" class="message">probe ${i} · <b>é</b> &amp; 😀</div>`);
      const publishedAt = Date.now();
      assert.equal(await pub.publish(CHANNEL, payload), 1);
      await page.waitForFunction((key) => key in window.__seen, id, { timeout: 2000, polling: 'raf' });
      const [seen, received] = await page.evaluate((key) => [window.__seen[key], window.__received[key]], id);
      latencies.push(seen - publishedAt);
      frames.push(received - publishedAt);
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const framesSorted = [...frames].sort((a, b) => a - b);
    t.diagnostic(`PUBLISH -> DOM mutation over ${PROBES} appends: median ${percentile(sorted, 50)} ms, ` +
      `p95 ${percentile(sorted, 95)} ms, max ${sorted[sorted.length - 1]} ms, min ${sorted[0]} ms`);
    t.diagnostic(`PUBLISH -> frame at the <turbo-cable-stream-source> (before Turbo's animation-frame wait): ` +
      `median ${percentile(framesSorted, 50)} ms, p95 ${percentile(framesSorted, 95)} ms, max ${framesSorted[framesSorted.length - 1]} ms`);
    assert.ok(sorted[sorted.length - 1] < 2000, `latencies ${sorted}`);
    assert.equal(await page.$$eval('#messages > .message', (els) => els.length), PROBES + 1);

    // The forged source never received anything, and never connected.
    assert.equal(await page.evaluate(() => window.__forgedMessages), 0);
    assert.equal(await page.getAttribute('#forged-source', 'connected'), null);
    // Rails' payloads are already what ActiveSupport writes: spliced, never rewritten.
    const stats = JSON.parse((await server.request('GET', '/stats')).text);
    assert.equal(stats.broadcasts_rewritten, 0);
    assert.ok(stats.broadcasts_received >= PUBLISHES.length + PROBES, JSON.stringify(stats));
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(server.problems(), []);
    await page.close();
  });
});
