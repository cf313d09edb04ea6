// The live console (GET /console, served by ferrocable itself) in Debian's Chromium, driven by
// playwright-core, against the real binary in development mode.
//
// (a) the page loads with nothing from elsewhere (every request goes to ferrocable, no console
//     error, so no CSP violation), shows connections, identities, streams with subscriber
//     counts and the broadcast rate; its form sends a test broadcast, which comes back through
//     the page's own WebSocket subscription and shows in the last broadcasts per stream;
//     screenshot to screenshots/console.png (docs/console.png is a copy of it).
// (b) with broadcast_api.key set, the page needs it (HTTP Basic: any user, the key as password).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const { Server, tempDir, waitFor, tappedWebSocket, sleep } = require('../../js/support.js');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = path.resolve(HERE, '..', 'screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const KEY = 'console-key-2718';

// Development mode (no authentication, loopback), with identities read from the query so the
// console has some to show.
const DEVELOPMENT = `
[origins]
check = false

[auth]
mode = "none"

[[auth.identifiers]]
name = "current_user"
query = "user"
gid = "gid://demo/User/{}"
required = false

[channels.ChatChannel]
streams = ["chat_{params.room}"]
require_params = ["room"]
`;

function subscribeFrame(identifier) {
  return JSON.stringify({ command: 'subscribe', identifier: JSON.stringify(identifier) });
}

/** A Node client (the `ws` package) subscribed to `identifier`; resolves once confirmed. */
async function client(server, query, identifier) {
  const WS = tappedWebSocket('http://127.0.0.1');
  const ws = new WS(server.cableUrl(query), ['actioncable-v1-json']);
  const frames = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString('utf8'))));
  await waitFor(() => frames.some((f) => f.type === 'welcome'), { timeout: 5000, message: 'welcome' });
  ws.send(subscribeFrame(identifier));
  await waitFor(() => frames.some((f) => f.type === 'confirm_subscription'), { timeout: 5000, message: 'confirm' });
  return { ws, frames };
}

async function launch(userDataDir, extra = {}) {
  return chromium.launchPersistentContext(userDataDir, {
    ...extra,
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
    timeout: 30000,
  });
}

describe('the live console in Chromium', () => {
  let server;
  let keyed;
  let context;
  let userDataDir;
  const clients = [];

  before(async () => {
    server = await Server.start({ config: DEVELOPMENT, tag: 'console' });
    keyed = await Server.start({ config: `${DEVELOPMENT}\n[broadcast_api]\nkey = "${KEY}"\n`, tag: 'console-keyed' });
    userDataDir = tempDir('chromium-console');
    context = await launch(userDataDir);
  });

  after(async () => {
    for (const c of clients) c.ws.close();
    try {
      if (context) await context.close();
    } finally {
      if (server) await server.stop();
      if (keyed) await keyed.stop();
      if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
    }
  });

  it('(a) shows connections, identities, streams, the rate and recent broadcasts; its form broadcasts', async () => {
    // Three other clients: two of them the same user, on a chat room and a public stream.
    clients.push(await client(server, { user: 'alice' }, { channel: 'ChatChannel', room: 'lobby' }));
    clients.push(await client(server, { user: 'alice' }, { channel: '$pubsub', stream_name: 'orders' }));
    clients.push(await client(server, { user: 'bob' }, { channel: 'ChatChannel', room: 'lobby' }));

    const page = await context.newPage();
    const problems = [];
    const requests = [];
    page.on('console', (msg) => { if (msg.type() === 'error' || msg.type() === 'warning') problems.push(msg.text()); });
    page.on('pageerror', (err) => problems.push(String(err)));
    page.on('request', (req) => requests.push(req.url()));
    page.on('websocket', (ws) => requests.push(ws.url()));

    const url = `${server.httpBase}/console`;
    const response = await page.goto(url);
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-security-policy'], /default-src 'none'/);
    await page.waitForSelector('[data-testid="live"]:text("live")', { timeout: 5000 });
    // The page subscribes through /cable itself (public streams exist in development mode).
    await page.waitForSelector('[data-testid="client-subscribed"]', { timeout: 5000 });

    // Broadcasts through the API, for the rate chart and the recent lists.
    for (let i = 1; i <= 6; i++) {
      const r = await server.request('POST', '/_broadcast', [
        { stream: 'chat_lobby', data: JSON.stringify({ user: i % 2 ? 'alice' : 'bob', text: `message ${i}` }) },
        { stream: 'orders', data: JSON.stringify({ type: 'new_order', order: { id: 900 + i, total: 12.5 * i } }) },
      ]);
      assert.equal(r.status, 201, r.text);
      await sleep(250);
    }

    // The form: a test broadcast to the stream the page listens to comes back to the page.
    await page.fill('#data', '{"text":"hello from the console form"}');
    await page.click('button[type="submit"]');
    await page.waitForSelector('[data-testid="send-result"]:text("sent")', { timeout: 5000 });
    const received = page.getByTestId('received-message').first();
    await received.waitFor({ timeout: 5000 });
    assert.match(await received.textContent(), /"text":"hello from the console form"/);

    // Everything the console lists, once the next poll has seen it.
    await page.waitForSelector('[data-recent-stream="console_demo"]', { timeout: 5000 });
    await page.waitForSelector('[data-recent-stream="orders"]', { timeout: 5000 });
    await page.waitForSelector('[data-testid="connections-count"]:text("4")', { timeout: 5000 });
    const streams = await page.$$eval('[data-testid="streams"] tr[data-stream]', (rows) =>
      Object.fromEntries(rows.map((r) => [r.dataset.stream, Number(r.cells[1].textContent)])));
    assert.deepEqual(streams, { chat_lobby: 2, console_demo: 1, orders: 1 });
    const identities = await page.$$eval('[data-testid="identities"] tr', (rows) =>
      rows.map((r) => [r.cells[0].textContent, r.cells[1]?.textContent]));
    assert.equal(identities.length, 2, JSON.stringify(identities));
    assert.equal(identities[0][1], '2', 'alice has two connections');
    assert.match(identities[0][0], /^gid:\/\/demo\/User\/alice /, 'the GlobalID, readable');
    const connections = await page.$$eval('[data-testid="connections"] tr[data-conn]', (rows) => rows.length);
    assert.equal(connections, 4, 'three Node clients and the page itself');
    const recentOrders = await page.$$eval('[data-recent-stream="orders"] .payload', (els) => els.map((e) => e.textContent));
    assert.equal(recentOrders.length, 6);
    assert.match(recentOrders[0], /"id":906/, 'newest first');
    assert.notEqual(await page.textContent('[data-testid="broadcasts-count"]'), '0');
    // The chart has drawn: some pixels of the line's colour.
    const drawn = await page.$eval('#chart', (c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] > 80 && d[i + 1] < 130) n++;
      return n;
    });
    assert.ok(drawn > 50, `chart pixels: ${drawn}`);

    await sleep(1100); // one more poll, so the rate tile and chart include the last second
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'console.png'), fullPage: true });

    const origin = server.httpBase;
    const foreign = requests.filter((u) => !u.startsWith(origin) && !u.startsWith(origin.replace('http:', 'ws:')));
    assert.deepEqual(foreign, [], 'the console loads nothing from elsewhere');
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('(b) with broadcast_api.key set, the console needs the key (HTTP Basic)', async () => {
    // Without credentials: 401 and a Basic challenge, which a browser turns into a prompt.
    const refused = await context.request.get(`${keyed.httpBase}/console`);
    assert.equal(refused.status(), 401);
    assert.match(refused.headers()['www-authenticate'], /^Basic/);
    // A browser that answers the prompt (any user name, the key as the password) gets the
    // page, and its own requests (state, broadcasts) carry the same credentials.
    const dir = tempDir('chromium-console-keyed');
    const withKey = await launch(dir, { httpCredentials: { username: 'ops', password: KEY } });
    try {
      const page = await withKey.newPage();
      const admitted = await page.goto(`${keyed.httpBase}/console`);
      assert.equal(admitted.status(), 200);
      await page.waitForSelector('[data-testid="live"]:text("live")', { timeout: 5000 });
      await page.click('button[type="submit"]');
      await page.waitForSelector('[data-testid="send-result"]:text("sent")', { timeout: 5000 });
    } finally {
      await withKey.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
