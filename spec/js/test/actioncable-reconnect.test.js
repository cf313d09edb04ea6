'use strict';
// Server restart: SIGTERM sends {"type":"disconnect","reason":"server_restart","reconnect":true}
// and close 1000; a new server comes up on the SAME port; @rails/actioncable's
// ConnectionMonitor must reconnect on its own (its stale/backoff timers take seconds),
// resubscribe, call connected({reconnected: true}) and receive broadcasts again.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Redis, Server, Recorder, mintToken, waitFor } = require('../support');
const { CONFIG, PREFIX, loadActionCable } = require('../fixtures');

describe('@rails/actioncable reconnects after a server restart', () => {
  const frames = [];
  let redis;
  let server;
  let consumer;

  before(async () => {
    redis = await Redis.start();
    server = await Server.start({ config: CONFIG, env: { REDIS_URL: redis.url }, tag: 'first' });
  });

  after(async () => {
    if (consumer) consumer.disconnect();
    try {
      if (server) await server.stop();
    } finally {
      if (redis) await redis.stop();
    }
  });

  it('reconnects by itself to a new server on the same port; connected() fires again; broadcasts flow', async (t) => {
    const ActionCable = loadActionCable(frames);
    consumer = ActionCable.createConsumer(server.cableUrl({
      token: mintToken({ user_id: 42, restaurant_id: 1, role: 'staff' }),
    }));
    const chat = new Recorder('chat');
    const orders = new Recorder('orders');
    consumer.subscriptions.create({ channel: 'ChatChannel', room: 'restart' }, chat.mixin());
    consumer.subscriptions.create({ channel: 'OrderChannel' }, orders.mixin());
    await chat.wait('connected');
    await orders.wait('connected');
    assert.equal(await redis.publish(`${PREFIX}:chat_restart`, { n: 'before' }), 1);
    await chat.wait('received');

    const port = server.port;
    const first = frames[0];
    const stoppedAt = Date.now();
    const { code } = await server.stop('SIGTERM');
    assert.equal(code, 0);
    await waitFor(() => first.close, { message: 'the close frame' });
    assert.equal(first.frames[first.frames.length - 1],
      '{"type":"disconnect","reason":"server_restart","reconnect":true}');
    assert.deepEqual(first.close, { code: 1000, reason: '' });
    await chat.wait('disconnected');
    assert.deepEqual(chat.of('disconnected')[0].data, { willAttemptReconnect: true });
    assert.ok(consumer.connection.monitor.isRunning(), 'reconnect: true keeps the monitor running');

    server = await Server.start({ config: CONFIG, env: { REDIS_URL: redis.url }, port, tag: 'second' });
    assert.equal(server.port, port);

    // The client's own timers: stale after 6 s, polled every 6-12 s (then ~7-8 s).
    await waitFor(() => chat.of('connected').length === 2 && orders.of('connected').length === 2, {
      timeout: 25000, interval: 50, message: 'connected() again on both subscriptions',
      details: () => JSON.stringify({ chat: chat.events, orders: orders.events }),
    });
    const again = [chat.of('connected')[1], orders.of('connected')[1]];
    t.diagnostic(`reconnected ${((Math.min(...again.map((e) => e.at)) - stoppedAt) / 1000).toFixed(1)} s after SIGTERM`);
    // 7.1+: the first confirm after a reconnect's welcome says so, the others do not.
    assert.deepEqual(again.map((e) => e.data.reconnected).sort(), [false, true]);
    const second = frames[frames.length - 1];
    assert.notEqual(second, first);
    assert.equal(second.protocol, 'actioncable-v1-json');
    assert.equal(second.frames[0], '{"type":"welcome"}');

    assert.equal(await redis.publish(`${PREFIX}:chat_restart`, { n: 'after' }), 1);
    assert.equal(await redis.publish(`${PREFIX}:order_channel_1`, { type: 'new_order', order: { id: 7 } }), 1);
    await chat.wait('received', (m) => m.n === 'after');
    await orders.wait('received');
    assert.deepEqual(chat.received(), [{ n: 'before' }, { n: 'after' }]);
    assert.deepEqual(orders.received(), [{ type: 'new_order', order: { id: 7 } }]);
    assert.equal(chat.of('connected').length, 2);
    // Failed attempts while the port was closed are fine; exactly one socket is open now.
    await waitFor(async () => (await server.health()).body.connections === 1, { message: 'one connection' });
    assert.deepEqual(server.problems(), []);
  });
});
