// @anycable/web (unmodified) in plain Action Cable mode (protocol 'actioncable-v1-json')
// against ferrocable: connect, subscribe, receive a Redis broadcast, perform actions, rejection.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createCable } from '@anycable/web';

const require = createRequire(import.meta.url);
const { Redis, Server, mintToken, waitFor, sleep, tappedWebSocket, ORIGIN } = require('../support.js');
const { CONFIG, PREFIX } = require('../fixtures.js');

/** Collects the client's own log (it reports protocol trouble at warn/error). */
function recordingLogger(entries) {
  const log = (level) => (msg, details) => {
    entries.push({ level, msg: String(msg), details });
    if (process.env.ANYCABLE_DEBUG) console.error(level, msg, details ?? '');
  };
  return { level: 'debug', debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), log: (l, m, d) => log(l)(m, d) };
}

function inbox(channel) {
  const got = [];
  channel.on('message', (msg) => got.push(msg));
  return got;
}

describe('@anycable/web (actioncable-v1-json) against ferrocable', () => {
  const frames = [];
  const cables = [];
  let redis;
  let server;

  function cable(claims, log = []) {
    const c = createCable(server.cableUrl({ token: mintToken(claims) }), {
      protocol: 'actioncable-v1-json',
      websocketImplementation: tappedWebSocket(ORIGIN, frames),
      logger: recordingLogger(log),
    });
    c.clientLog = log;
    cables.push(c);
    return c;
  }

  before(async () => {
    redis = await Redis.start();
    server = await Server.start({ config: CONFIG, env: { REDIS_URL: redis.url } });
  });

  after(async () => {
    for (const c of cables) c.disconnect();
    try {
      if (server) await server.stop();
    } finally {
      if (redis) await redis.stop();
    }
  });

  it('connects, subscribes, receives a Redis broadcast and performs actions', async () => {
    const a = cable({ user_id: 42, restaurant_id: 1, role: 'admin' });
    const b = cable({ user_id: 43, restaurant_id: 1, role: 'staff' });
    const chatA = a.subscribeTo('ChatChannel', { room: 'anycable' });
    const chatB = b.subscribeTo('ChatChannel', { room: 'anycable' });
    const gotA = inbox(chatA);
    const gotB = inbox(chatB);
    await chatA.ensureSubscribed();
    await chatB.ensureSubscribed();
    assert.equal(a.state, 'connected');
    assert.equal(chatA.state, 'connected');

    const sock = frames.find((f) => f.url.includes(a.transport.url.split('?')[1]) && f.opened);
    assert.deepEqual(sock.offered, 'actioncable-v1-json');
    assert.equal(sock.protocol, 'actioncable-v1-json');
    assert.equal(sock.frames[0], '{"type":"welcome"}', 'plain Action Cable: no sid');
    // AnyCable sorts identifier keys; the server echoes the identifier it was given.
    assert.ok(sock.frames.includes('{"identifier":"{\\"channel\\":\\"ChatChannel\\",\\"room\\":\\"anycable\\"}","type":"confirm_subscription"}'),
      sock.frames.join('\n'));

    const payload = '{"type":"new_order","order":{"id":981,"total":12.5,"note":"\\u003cextra\\u003e \\u0026 ü"}}';
    // One Redis subscriber: the ferrocable node (it shares one SUBSCRIBE between connections).
    assert.equal(await redis.publish(`${PREFIX}:chat_anycable`, payload), 1);
    await waitFor(() => gotA.length === 1 && gotB.length === 1, { message: 'the Redis broadcast on both' });
    assert.deepEqual(gotA, [JSON.parse(payload)]);
    assert.deepEqual(gotB, [JSON.parse(payload)]);
    assert.equal(gotA[0].order.note, '<extra> & ü');

    await chatA.perform('echo', { text: 'from anycable' });
    await waitFor(() => gotA.length === 2, { message: 'the echo' });
    assert.deepEqual(gotA[1], { text: 'from anycable', action: 'echo' });

    await chatB.perform('speak', { text: 'hi all' });
    await waitFor(() => gotA.length === 3 && gotB.length === 2, { message: 'the speak broadcast' });
    await sleep(200);
    assert.deepEqual(gotA[2], { text: 'hi all', action: 'speak' });
    assert.deepEqual(gotB, [JSON.parse(payload), { text: 'hi all', action: 'speak' }]);

    // The ActionCable-style API in the same package works the same way.
    const orders = a.subscribeTo('OrderChannel');
    const gotOrders = inbox(orders);
    await orders.ensureSubscribed();
    assert.equal(await redis.publish(`${PREFIX}:order_channel_1`, { type: 'order_updated', order: { id: 5 } }), 1);
    await waitFor(() => gotOrders.length === 1, { message: 'order broadcast' });
    assert.deepEqual(gotOrders, [{ type: 'order_updated', order: { id: 5 } }]);
    const trouble = [...a.clientLog, ...b.clientLog].filter((e) => e.level === 'warn' || e.level === 'error');
    assert.deepEqual(trouble, [], 'the client logged no warnings or errors');
  });

  it('a rule-based rejection rejects ensureSubscribed(); the cable stays connected', async () => {
    const c = cable({ user_id: 99, restaurant_id: 1, role: 'customer' });
    const chat = c.subscribeTo('ChatChannel', { room: 'anycable' });
    await assert.rejects(chat.ensureSubscribed(), (err) => {
      assert.equal(err.name, 'SubscriptionRejectedError');
      return true;
    });
    assert.ok(frames.some((f) => f.frames.includes('{"identifier":"{\\"channel\\":\\"ChatChannel\\",\\"room\\":\\"anycable\\"}","type":"reject_subscription"}')));
    assert.equal(chat.state, 'closed');
    const orders = c.subscribeTo('OrderChannel');
    await orders.ensureSubscribed();
    assert.equal(c.state, 'connected');
    assert.deepEqual(server.problems(), []);
  });
});
