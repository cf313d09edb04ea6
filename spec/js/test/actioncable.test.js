'use strict';
// @rails/actioncable (unmodified) against the real ferrocable binary and a real redis-server:
// createConsumer, subscriptions.create -> connected(), received() for Rails-format Redis
// publishes and /_broadcast, perform() (transmit and broadcast_to), unsubscribe(), rejected(),
// and a refused token.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  Redis, Server, Recorder, mintToken, badSignatureToken, sleep, waitFor,
} = require('../support');
const { CONFIG, PREFIX, loadActionCable } = require('../fixtures');

const ADMIN_1 = { user_id: 42, restaurant_id: 1, role: 'admin' };
const STAFF_1 = { user_id: 43, restaurant_id: 1, role: 'staff' };
const ADMIN_2 = { user_id: 77, restaurant_id: 2, role: 'admin' };
const CUSTOMER_1 = { user_id: 99, restaurant_id: 1, role: 'customer' };

describe('@rails/actioncable against ferrocable', () => {
  const frames = [];
  const consumers = [];
  let redis;
  let server;
  let ActionCable;

  function consumer(claims, token = mintToken(claims)) {
    const c = ActionCable.createConsumer(server.cableUrl({ token }));
    consumers.push(c);
    return c;
  }

  function socketOf(c) {
    const list = frames.filter((f) => f.url === c.url);
    return list[list.length - 1];
  }

  /** The exact frame ferrocable must send for a broadcast: the Redis payload spliced in. */
  function broadcastFrame(identifier, payloadText) {
    return `{"identifier":${JSON.stringify(identifier)},"message":${payloadText}}`;
  }

  async function subscribe(c, params, name) {
    const rec = new Recorder(name || JSON.stringify(params));
    rec.sub = c.subscriptions.create(params, rec.mixin());
    await rec.wait('connected');
    return rec;
  }

  before(async () => {
    redis = await Redis.start();
    server = await Server.start({ config: CONFIG, env: { REDIS_URL: redis.url } });
    ActionCable = loadActionCable(frames);
  });

  after(async () => {
    for (const c of consumers) c.disconnect();
    try {
      if (server) {
        const { code } = await server.stop();
        assert.equal(code, 0, 'ferrocable exits 0 on SIGTERM');
      }
    } finally {
      if (redis) await redis.stop();
    }
  });

  it('createConsumer + subscriptions.create -> connected() once, over actioncable-v1-json', async () => {
    const c = consumer(ADMIN_1);
    const rec = await subscribe(c, { channel: 'ChatChannel', room: 'lobby' });
    assert.deepEqual(rec.of('connected')[0].data, { reconnected: false });

    const sock = socketOf(c);
    assert.deepEqual(sock.offered, ['actioncable-v1-json', 'actioncable-unsupported']);
    assert.equal(sock.protocol, 'actioncable-v1-json');
    assert.equal(c.connection.getProtocol(), 'actioncable-v1-json');
    assert.equal(sock.frames[0], '{"type":"welcome"}');

    // The client may send the subscribe twice (on create and on welcome) and the guarantor
    // resends until confirmed: the server must confirm exactly once.
    await sleep(700);
    const confirm = `{"identifier":${JSON.stringify(rec.sub.identifier)},"type":"confirm_subscription"}`;
    assert.equal(rec.sub.identifier, '{"channel":"ChatChannel","room":"lobby"}');
    assert.equal(sock.frames.filter((f) => f === confirm).length, 1, `frames: ${sock.frames.join('\n')}`);
    assert.equal(rec.of('connected').length, 1);
    assert.equal(c.subscriptions.guarantor.pendingSubscriptions.length, 0);

    // Pings: {"type":"ping","message":<unix seconds>} (every second in this config).
    const ping = await waitFor(() => sock.frames.find((f) => f.startsWith('{"type":"ping"')), { message: 'a ping' });
    assert.match(ping, /^\{"type":"ping","message":\d{10}\}$/);
    assert.ok(Math.abs(JSON.parse(ping).message - Date.now() / 1000) < 5);

    const health = await server.health();
    assert.equal(health.status, 200);
    assert.ok(health.body.connections >= 1, JSON.stringify(health.body));
  });

  it('received() gets a Rails-format PUBLISH <prefix>:<stream> from Redis, only on that stream', async () => {
    const c = consumer(ADMIN_1);
    const lobby = await subscribe(c, { channel: 'ChatChannel', room: 'redis' });
    const other = await subscribe(c, { channel: 'ChatChannel', room: 'redis-other' });

    // What ActiveSupport::JSON.encode writes for {text: "hi <b> & é", n: 1, price: 12.5, ...}.
    const payload = '{"text":"hi \\u003cb\\u003e \\u0026 é","n":1,"price":12.5,"tags":["a","b"],"order":{"id":981,"paid":true,"note":null}}';
    assert.equal(await redis.publish(`${PREFIX}:chat_redis`, payload), 1, 'ferrocable subscribed to the Redis channel');
    await lobby.wait('received');
    assert.equal(await redis.publish(`${PREFIX}:chat_redis-other`, '{"text":"other"}'), 1);
    await other.wait('received');

    assert.deepEqual(lobby.received(), [JSON.parse(payload)]);
    assert.deepEqual(lobby.received()[0].text, 'hi <b> & é');
    assert.deepEqual(other.received(), [{ text: 'other' }]);
    // Byte for byte what Rails sends: the payload spliced in after the identifier.
    assert.ok(socketOf(c).frames.includes(broadcastFrame(lobby.sub.identifier, payload)),
      `frames: ${socketOf(c).frames.join('\n')}`);

    // A publish without the prefix is not ours.
    await redis.publish('chat_redis', '{"text":"unprefixed"}');
    await redis.publish(`${PREFIX}:chat_redis`, '{"text":"second"}');
    await lobby.wait('received', (m) => m.text === 'second');
    assert.deepEqual(lobby.received().map((m) => m.text), ['hi <b> & é', 'second']);
  });

  it('received() gets a POST /_broadcast, published through Redis', async () => {
    const c = consumer(STAFF_1);
    const rec = await subscribe(c, { channel: 'ChatChannel', room: 'api' });
    const tap = await redis.subscribe(`${PREFIX}:chat_api`);
    try {
      // "data" as JSON text (the documented form) is published as given ...
      const message = { type: 'announcement', body: 'kitchen closes at 9 <pm> & é', count: 3, price: 12.5 };
      assert.deepEqual(await server.broadcast('chat_api', message), { broadcasts: 1 });
      // ... and "data" as a JSON value is encoded as ActionCable.server.broadcast would.
      const res = await server.request('POST', '/_broadcast', { stream: 'chat_api', data: { html: '<b>&</b>', n: 2 } });
      assert.equal(res.status, 201, res.text);
      await rec.wait('received', (m) => m.n === 2);
      assert.deepEqual(rec.received(), [message, { html: '<b>&</b>', n: 2 }]);
      await waitFor(() => tap.messages.length === 2, { message: 'both PUBLISHes seen in Redis' });
      assert.deepEqual(tap.messages, [
        { channel: `${PREFIX}:chat_api`, payload: JSON.stringify(message) },
        { channel: `${PREFIX}:chat_api`, payload: '{"html":"\\u003cb\\u003e\\u0026\\u003c/b\\u003e","n":2}' },
      ]);
      // Whatever the publisher wrote, the frame is ActiveSupport JSON, as Rails re-encodes it.
      const sock = socketOf(c);
      assert.ok(sock.frames.includes(broadcastFrame(rec.sub.identifier,
        '{"type":"announcement","body":"kitchen closes at 9 \\u003cpm\\u003e \\u0026 é","count":3,"price":12.5}')), sock.frames.join('\n'));
    } finally {
      tap.close();
    }
  });

  it('received() gets the Rails re-encoding of a hand-written Redis payload; invalid JSON is dropped', async () => {
    const c = consumer(ADMIN_1);
    const rec = await subscribe(c, { channel: 'ChatChannel', room: 'loose' });
    await redis.publish(`${PREFIX}:chat_loose`, 'not json');
    await redis.publish(`${PREFIX}:chat_loose`, '{ "a" : 1 , "s":"<x> & \\u00e9 \\/", "f": 2.50, "e": 1e3 }');
    await rec.wait('received');
    await sleep(100);
    assert.deepEqual(rec.received(), [{ a: 1, s: '<x> & é /', f: 2.5, e: 1000 }]);
    // docs/PROTOCOL.md §4.3: whitespace gone, 2.50 -> 2.5, 1e3 -> 1000.0, \/ -> /, é raw, <>& escaped.
    assert.ok(socketOf(c).frames.includes(broadcastFrame(rec.sub.identifier,
      '{"a":1,"s":"\\u003cx\\u003e \\u0026 é /","f":2.5,"e":1000.0}')), socketOf(c).frames.join('\n'));
    assert.ok(server.logs.some((l) => l.level === 'WARN' && l.stream === 'chat_loose' && /not valid JSON/.test(l.message)),
      'the dropped payload is logged');
  });

  it('OrderChannel streams order_channel_<restaurant_id from the token>, ignoring params', async () => {
    const r1 = consumer(ADMIN_1);
    const r2 = consumer(ADMIN_2);
    // Like Hafaloha: the identifier's restaurant_id is never read.
    const one = await subscribe(r1, { channel: 'OrderChannel', restaurant_id: 2 });
    const two = await subscribe(r2, { channel: 'OrderChannel', restaurant_id: 2 });
    assert.equal(one.sub.identifier, '{"channel":"OrderChannel","restaurant_id":2}');

    const order1 = { type: 'new_order', order: { id: 981, restaurant_id: 1, total: 12.5 } };
    const order2 = { type: 'new_order', order: { id: 982, restaurant_id: 2, total: 7.25 } };
    assert.equal(await redis.publish(`${PREFIX}:order_channel_1`, order1), 1);
    assert.equal(await redis.publish(`${PREFIX}:order_channel_2`, order2), 1);
    await one.wait('received');
    await two.wait('received');
    await sleep(200);
    assert.deepEqual(one.received(), [order1]);
    assert.deepEqual(two.received(), [order2]);
  });

  it('perform(): echo comes back to the caller only, speak reaches every subscriber on every node', async () => {
    // A second ferrocable node on the same Redis: broadcast_to must go through Redis.
    const node2 = await Server.start({ config: CONFIG, env: { REDIS_URL: redis.url }, tag: 'node2' });
    try {
      const a = consumer(ADMIN_1);
      const b = consumer(STAFF_1);
      const onA = await subscribe(a, { channel: 'ChatChannel', room: 'perform' }, 'A');
      const onB = await subscribe(b, { channel: 'ChatChannel', room: 'perform' }, 'B');
      const remote = ActionCable.createConsumer(node2.cableUrl({ token: mintToken(STAFF_1) }));
      consumers.push(remote);
      const onRemote = await subscribe(remote, { channel: 'ChatChannel', room: 'perform' }, 'node2');

      assert.equal(onA.sub.perform('echo', { text: 'ping <1> & é' }), true);
      const echo = await onA.wait('received');
      assert.deepEqual(echo.data, { text: 'ping <1> & é', action: 'echo' });

      assert.equal(onA.sub.perform('speak', { text: 'hello', n: 2 }), true);
      const expected = { text: 'hello', n: 2, action: 'speak' };
      for (const rec of [onA, onB, onRemote]) {
        await rec.wait('received', (m) => m.action === 'speak');
      }
      await sleep(200);
      assert.deepEqual(onA.received(), [echo.data, expected]);
      assert.deepEqual(onB.received(), [expected], 'echo is transmitted to the caller only');
      assert.deepEqual(onRemote.received(), [expected], 'speak went through Redis to node 2');
      assert.deepEqual(node2.problems(), []);
    } finally {
      await node2.stop();
    }
  });

  it('unsubscribe() stops delivery; subscribing again restarts it', async () => {
    const a = consumer(ADMIN_1);
    const b = consumer(ADMIN_1);
    const leaving = await subscribe(a, { channel: 'ChatChannel', room: 'unsub' }, 'leaving');
    const staying = await subscribe(b, { channel: 'ChatChannel', room: 'unsub' }, 'staying');
    const also = await subscribe(a, { channel: 'ChatChannel', room: 'unsub-other' }, 'same connection');

    assert.equal(await redis.publish(`${PREFIX}:chat_unsub`, { n: 1 }), 1);
    await leaving.wait('received');
    await staying.wait('received');

    leaving.sub.unsubscribe();
    assert.equal(a.subscriptions.findAll(leaving.sub.identifier).length, 0);
    await sleep(300);
    await redis.publish(`${PREFIX}:chat_unsub`, { n: 2 });
    await redis.publish(`${PREFIX}:chat_unsub-other`, { n: 3 });
    await staying.wait('received', (m) => m.n === 2);
    await also.wait('received', (m) => m.n === 3);
    await sleep(300);
    assert.deepEqual(leaving.received(), [{ n: 1 }], 'no delivery after unsubscribe');
    assert.deepEqual(staying.received(), [{ n: 1 }, { n: 2 }]);
    assert.ok(a.connection.isOpen(), 'the connection stays open');

    const again = await subscribe(a, { channel: 'ChatChannel', room: 'unsub' }, 'again');
    await redis.publish(`${PREFIX}:chat_unsub`, { n: 4 });
    await again.wait('received');
    await sleep(200);
    assert.deepEqual(again.received(), [{ n: 4 }]);
    assert.deepEqual(leaving.received(), [{ n: 1 }]);
  });

  it('rejected() for rule-based rejections; the connection stays usable', async () => {
    const customer = consumer(CUSTOMER_1);
    const byRole = new Recorder('role');
    const sub = customer.subscriptions.create({ channel: 'ChatChannel', room: 'lobby' }, byRole.mixin());
    await byRole.wait('rejected');
    assert.deepEqual(customer.subscriptions.findAll(sub.identifier), [], 'the client dropped it');
    const reject = `{"identifier":${JSON.stringify(sub.identifier)},"type":"reject_subscription"}`;
    assert.ok(socketOf(customer).frames.includes(reject), socketOf(customer).frames.join('\n'));

    const admin = consumer(ADMIN_1);
    const noRoom = new Recorder('no room');
    admin.subscriptions.create({ channel: 'ChatChannel' }, noRoom.mixin());
    const wrongTenant = new Recorder('wrong tenant');
    admin.subscriptions.create({ channel: 'KitchenChannel', restaurant_id: 2 }, wrongTenant.mixin());
    await noRoom.wait('rejected');
    await wrongTenant.wait('rejected');

    // Positive controls on the same connection: matching tenant (as a string too) confirms.
    const kitchen = await subscribe(admin, { channel: 'KitchenChannel', restaurant_id: 1 });
    const kitchenStr = await subscribe(admin, { channel: 'KitchenChannel', restaurant_id: '1' });
    assert.equal(await redis.publish(`${PREFIX}:kitchen_1`, { ticket: 5 }), 1);
    await kitchen.wait('received');
    await kitchenStr.wait('received');
    // The customer's connection still works for channels it may use.
    const orders = await subscribe(customer, { channel: 'OrderChannel' });
    await redis.publish(`${PREFIX}:order_channel_1`, { type: 'order_updated', order: { id: 5 } });
    await orders.wait('received');

    await sleep(300);
    for (const rec of [byRole, noRoom, wrongTenant]) {
      assert.equal(rec.of('connected').length, 0, `${rec.name} never connected`);
      assert.equal(rec.of('rejected').length, 1, `${rec.name} rejected once`);
      assert.deepEqual(rec.received(), []);
    }
    assert.ok(customer.connection.isOpen() && admin.connection.isOpen());
  });

  it('a token with a bad signature is refused: unauthorized disconnect, close 1000, no reconnect', async () => {
    const c = consumer(null, badSignatureToken(ADMIN_1));
    const rec = new Recorder('refused');
    c.subscriptions.create({ channel: 'ChatChannel', room: 'lobby' }, rec.mixin());
    const sock = await waitFor(() => { const s = socketOf(c); return s && s.close && s; }, { message: 'close' });
    assert.equal(sock.opened, true, 'the upgrade succeeds (Rails answers 101, then refuses)');
    assert.deepEqual(sock.frames, ['{"type":"disconnect","reason":"unauthorized","reconnect":false}']);
    assert.deepEqual(sock.close, { code: 1000, reason: '' });
    await rec.wait('disconnected');
    assert.deepEqual(rec.of('disconnected')[0].data, { willAttemptReconnect: false });
    assert.equal(c.connection.monitor.isRunning(), false, 'reconnect: false stops the monitor');
    await sleep(1000);
    assert.equal(frames.filter((f) => f.url === c.url).length, 1, 'no second attempt');
    assert.equal(rec.of('connected').length, 0);
  });

  it('logs no warnings or errors for all of the above', () => {
    const problems = server.problems()
      .filter((l) => !(l.stream === 'chat_loose' && /not valid JSON/.test(l.message)));
    assert.deepEqual(problems, []);
  });
});
