// The Hafaloha-like dashboard (dist/, built by Vite) in Debian's Chromium, driven by
// playwright-core, against ferrocable running config/hafaloha.toml itself and a real redis-server.
//
// (a) valid token: connected, Rails-format PUBLISHes of new_order / order_updated (orders) and
//     low_stock (inventory) show up, the first within 1 s; ping/pong and client pings are
//     harmless; screenshot to screenshots/dashboard.png.
// (b) token with a bad signature: disconnected (unauthorized, close 1000).
// (c) a page from an origin that is not allowed: the handshake fails, disconnected.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './chromium.mjs';

const require = createRequire(import.meta.url);
const { ROOT, Redis, Server, onFreePort, listen, mintToken, badSignatureToken, waitFor } = require('../../js/support.js');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.resolve(HERE, '..', 'dist');
const SHOTS = path.resolve(HERE, '..', 'screenshots');
const PREFIX = 'shimizu_order_suite_production';
const ADMIN = { user_id: 42, restaurant_id: 1, role: 'admin' };
const ORDER_ID = { channel: 'OrderChannel', restaurant_id: 1 };
const INVENTORY_ID = { channel: 'InventoryChannel', restaurant_id: 1 };

// Payloads as Rails publishes them (ActiveSupport::JSON: <>& escaped, whole floats keep .0).
const NEW_ORDER = '{"type":"new_order","order":{"id":981,"restaurant_id":1,"user_id":7,"items":[{"id":12,"name":"Acai Bowl","price":12.5,"quantity":1},{"id":14,"name":"Spam Musubi","price":4.0,"quantity":2}],"status":"pending","total":20.5,"promo_code":null,"special_instructions":"no onions \\u003cplease\\u003e \\u0026 thanks","contact_name":"Keola Kahale","contact_phone":"+1 808 555 0101","createdAt":"2025-04-01T09:00:00+10:00","userId":7,"location_name":"Main","order_number":"H-0981","created_by_user_id":null,"is_staff_order":false},"staff_info":{"created_by_staff_id":null,"created_by_user_id":null,"is_staff_order":false}}';
const ORDER_UPDATED = '{"type":"order_updated","order":{"id":981,"restaurant_id":1,"status":"preparing","total":20.5,"order_number":"H-0981","contact_name":"Keola Kahale","items":[{"id":12,"name":"Acai Bowl","price":12.5,"quantity":1},{"id":14,"name":"Spam Musubi","price":4.0,"quantity":2}]},"staff_info":{"created_by_staff_id":5,"created_by_user_id":42,"is_staff_order":false}}';
const LOW_STOCK = '{"type":"low_stock","item":{"id":12,"name":"Acai Bowl","menu_id":3,"price":12.5,"stock_status":"low_stock","enable_stock_tracking":true,"stock_quantity":8,"damaged_quantity":1,"available_quantity":3,"low_stock_threshold":5}}';
const OTHER_RESTAURANT = '{"type":"new_order","order":{"id":555,"restaurant_id":2,"status":"pending","total":9.0}}';
const ORDER_DELETED = '{"type":"order_deleted","order":{"id":900,"destroyed":true}}';

function frameFor(identifier, payload) {
  return `{"identifier":${JSON.stringify(JSON.stringify(identifier))},"message":${payload}}`;
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml' };

/** The built page, on a port the kernel picks (no port to lose to another process). */
function startStatic(root) {
  const server = http.createServer((req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file = path.join(root, urlPath === '/' ? 'index.html' : urlPath);
    if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) file = path.join(root, 'index.html');
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
    fs.createReadStream(file).pipe(res);
  });
  return listen(server);
}

describe('Hafaloha-like dashboard in Chromium against ferrocable (config/hafaloha.toml)', () => {
  let redis;
  let server;
  let statics;
  let staticPort;
  let browser;
  let context;

  function pageUrl(host, query) {
    const qs = new URLSearchParams({ api: server.httpBase, heartbeat: '1000', ...query }).toString();
    return `http://${host}:${staticPort}/?${qs}`;
  }

  async function cableState(page) {
    return page.evaluate(() => window.__cable);
  }

  before(async () => {
    assert.ok(fs.existsSync(path.join(DIST, 'index.html')), 'build the page first (npx vite build)');
    redis = await Redis.start();
    statics = await startStatic(DIST);
    staticPort = statics.address().port;
    // PORT must be chosen before the server starts: if another process takes it first, the
    // server cannot bind and is started again on another.
    let cablePort;
    server = await onFreePort('ferrocable', (port) => {
      cablePort = port;
      return Server.start({
        configFile: path.join(ROOT, 'config', 'hafaloha.toml'),
        port: null, // PORT from the environment, as in production
        tag: 'hafaloha',
        env: {
          REDIS_URL: redis.url,
          PORT: String(port),
          FERROCABLE_SERVER__HOST: '127.0.0.1',
          FERROCABLE_ORIGINS__ALLOWED: JSON.stringify([`http://127.0.0.1:${staticPort}`]),
        },
      });
    });
    assert.equal(server.port, cablePort);
    browser = await launchChromium('chromium', { width: 1000, height: 760 });
    ({ context } = browser);
  });

  after(async () => {
    try {
      if (browser) await browser.close();
      if (statics) await new Promise((resolve) => statics.close(resolve));
    } finally {
      try {
        if (server) await server.stop();
      } finally {
        if (redis) await redis.stop();
      }
    }
  });

  it('(a) valid token: connected; new_order appears within 1 s; order_updated and low_stock too', async (t) => {
    const page = await context.newPage();
    const consoleErrors = [];
    page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
    page.on('pageerror', (err) => consoleErrors.push(String(err)));
    await page.goto(pageUrl('127.0.0.1', { token: mintToken(ADMIN), restaurant_id: '1' }));

    const status = page.getByTestId('connection-status');
    await page.waitForSelector('[data-testid="connection-status"][data-state="connected"]', { timeout: 5000 });
    await page.waitForSelector('[data-testid="sub-OrderChannel"][data-confirmed="true"]', { timeout: 5000 });
    await page.waitForSelector('[data-testid="sub-InventoryChannel"][data-confirmed="true"]', { timeout: 5000 });
    assert.equal(await status.textContent(), 'Live: connected');

    let cable = await cableState(page);
    assert.ok(cable.url.startsWith(`${server.cableUrl()}?token=`), cable.url);
    assert.match(cable.url, /^ws:\/\/127\.0\.0\.1:\d+\/cable\?token=[\w-]+\.[\w-]+\.[\w-]+&restaurant_id=1$/);
    // The browser offered no subprotocol and the server named none.
    assert.equal(await page.evaluate(() => document.querySelector('.meta .muted').textContent), 'subprotocol: none');
    assert.deepEqual(cable.sent.slice(0, 4), [
      '{"command":"subscribe","identifier":"{\\"channel\\":\\"OrderChannel\\",\\"restaurant_id\\":1}"}',
      '{"command":"subscribe","identifier":"{\\"channel\\":\\"order_channel_1\\"}"}',
      '{"command":"subscribe","identifier":"{\\"channel\\":\\"InventoryChannel\\",\\"restaurant_id\\":1}"}',
      '{"command":"subscribe","identifier":"{\\"channel\\":\\"inventory_channel_1\\"}"}',
    ]);
    const texts = cable.frames.map((f) => f.data);
    assert.equal(texts[0], '{"type":"welcome"}');
    assert.ok(texts.includes(`{"identifier":${JSON.stringify(JSON.stringify(ORDER_ID))},"type":"confirm_subscription"}`));
    assert.ok(texts.includes(`{"identifier":${JSON.stringify(JSON.stringify(INVENTORY_ID))},"type":"confirm_subscription"}`));
    assert.deepEqual(texts.filter((f) => /order_channel_1|inventory_channel_1/.test(f)), [], 'unknown channels: no reply');

    // Another restaurant's stream: nobody here listens, so ferrocable has not even subscribed.
    assert.equal(await redis.publish(`${PREFIX}:order_channel_2`, OTHER_RESTAURANT), 0);

    // new_order: PUBLISH -> on the page, timed.
    const publishedAt = Date.now();
    assert.equal(await redis.publish(`${PREFIX}:order_channel_1`, NEW_ORDER), 1);
    const row = await page.waitForSelector('[data-testid="event"][data-type="new_order"][data-id="981"]', { timeout: 1000 });
    const visibleAt = Date.now();
    const receivedAt = Number(await row.getAttribute('data-received-at'));
    const latency = receivedAt - publishedAt;
    t.diagnostic(`publish -> WebSocket frame in the page: ${latency} ms; -> row seen by the test: ${visibleAt - publishedAt} ms`);
    assert.ok(latency >= 0 && latency < 1000, `latency ${latency} ms`);
    assert.equal(await row.$eval('[data-testid="event-title"]', (e) => e.textContent), 'New order #H-0981');
    assert.equal(await row.$eval('[data-testid="event-detail"]', (e) => e.textContent),
      'pending · $20.50 · Acai Bowl ×1, Spam Musubi ×2 · Keola Kahale');

    // order_deleted is not a type the dashboard shows; order_updated is.
    assert.equal(await redis.publish(`${PREFIX}:order_channel_1`, ORDER_DELETED), 1);
    const updatedAt = Date.now();
    assert.equal(await redis.publish(`${PREFIX}:order_channel_1`, ORDER_UPDATED), 1);
    const updated = await page.waitForSelector('[data-testid="event"][data-type="order_updated"][data-id="981"]', { timeout: 1000 });
    const updatedLatency = Number(await updated.getAttribute('data-received-at')) - updatedAt;
    assert.equal(await updated.$eval('[data-testid="event-detail"]', (e) => e.textContent),
      'preparing · $20.50 · Acai Bowl ×1, Spam Musubi ×2 · Keola Kahale');
    const lowAt = Date.now();
    assert.equal(await redis.publish(`${PREFIX}:inventory_channel_1`, LOW_STOCK), 1);
    const low = await page.waitForSelector('[data-testid="event"][data-type="low_stock"][data-id="12"]', { timeout: 1000 });
    const lowLatency = Number(await low.getAttribute('data-received-at')) - lowAt;
    t.diagnostic(`publish -> frame in the page: order_updated ${updatedLatency} ms, low_stock ${lowLatency} ms`);
    assert.ok(updatedLatency < 1000 && lowLatency < 1000);
    assert.equal(await low.$eval('[data-testid="event-title"]', (e) => e.textContent), 'Low stock: Acai Bowl');
    assert.equal(await low.$eval('[data-testid="event-detail"]', (e) => e.textContent), '3 left · threshold 5');

    // Exactly these three rows, newest first; nothing from restaurant 2.
    const rows = await page.$$eval('[data-testid="event"]', (els) => els.map((e) => `${e.dataset.type}:${e.dataset.id}`));
    assert.deepEqual(rows, ['low_stock:12', 'order_updated:981', 'new_order:981']);
    assert.equal(await page.getByTestId('ignored').getAttribute('data-count'), '1');

    // Byte for byte what Rails sends: the Redis payload spliced into the frame.
    cable = await cableState(page);
    const got = cable.frames.map((f) => f.data).filter((f) => f.includes('"message":{'));
    assert.deepEqual(got, [
      frameFor(ORDER_ID, NEW_ORDER),
      frameFor(ORDER_ID, ORDER_DELETED),
      frameFor(ORDER_ID, ORDER_UPDATED),
      frameFor(INVENTORY_ID, LOW_STOCK),
    ]);

    // Heartbeats: server pings (every 3 s) answered with {"type":"pong"}, client {"type":"ping"}
    // every second here (30 s in Hafaloha). Both are ignored by the server; the socket stays up.
    await page.waitForSelector('[data-testid="counters"]:not([data-pongs="0"])', { timeout: 7000 });
    await waitFor(async () => Number(await page.getByTestId('counters').getAttribute('data-heartbeats')) >= 2, { timeout: 5000, message: 'client pings' });
    cable = await cableState(page);
    assert.ok(cable.sent.includes('{"type":"pong"}') && cable.sent.includes('{"type":"ping"}'));
    const ping = cable.frames.map((f) => f.data).find((f) => f.startsWith('{"type":"ping"'));
    assert.match(ping, /^\{"type":"ping","message":\d{10}\}$/);
    const again = '{"type":"order_updated","order":{"id":982,"status":"ready","total":4.0,"items":[]},"staff_info":{}}';
    assert.equal(await redis.publish(`${PREFIX}:order_channel_1`, again), 1);
    await page.waitForSelector('[data-testid="event"][data-type="order_updated"][data-id="982"]', { timeout: 2000 });
    assert.equal(await page.getByTestId('connection-status').getAttribute('data-state'), 'connected');
    assert.deepEqual((await cableState(page)).closes, []);
    assert.equal((await server.health()).body.connections, 1);

    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'dashboard.png'), fullPage: true });
    assert.deepEqual(consoleErrors, []);
    await page.close();
  });

  it('(b) token with a bad signature: the page shows disconnected (unauthorized, close 1000)', async () => {
    const page = await context.newPage();
    await page.goto(pageUrl('127.0.0.1', { token: badSignatureToken(ADMIN), restaurant_id: '1' }));
    await page.waitForSelector('[data-testid="connection-status"][data-state="disconnected"]', { timeout: 5000 });
    const status = page.getByTestId('connection-status');
    assert.equal(await status.getAttribute('data-reason'), 'unauthorized');
    assert.equal(await status.getAttribute('data-close-code'), '1000');
    assert.match(await status.textContent(), /^Disconnected/);
    const cable = await cableState(page);
    assert.deepEqual(cable.frames.map((f) => f.data), ['{"type":"disconnect","reason":"unauthorized","reconnect":false}']);
    assert.equal(await page.getByTestId('sub-OrderChannel').getAttribute('data-confirmed'), 'false');
    assert.ok(server.logs.some((l) => l.message === 'An unauthorized connection attempt was rejected' && l.cause === 'bad signature'));
    await page.screenshot({ path: path.join(SHOTS, 'refused.png') });
    await page.close();
  });

  it('(c) a page from an origin that is not allowed cannot connect', async () => {
    const page = await context.newPage();
    // Same static server, reached as "localhost": Origin http://localhost:<port> is not allowed.
    await page.goto(pageUrl('localhost', { token: mintToken(ADMIN), restaurant_id: '1' }));
    await page.waitForSelector('[data-testid="connection-status"][data-state="disconnected"]', { timeout: 5000 });
    const cable = await cableState(page);
    assert.deepEqual(cable.frames, []);
    assert.equal(cable.closes[0].code, 1006, 'the handshake failed');
    await page.close();
    assert.ok(server.logs.some((l) => l.message === `Request origin not allowed: http://localhost:${staticPort}`),
      server.logText());
    assert.deepEqual(server.problems(), []);
  });
});
