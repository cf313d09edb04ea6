'use strict';
// The SubscriptionGuarantor (@rails/actioncable 7.x) against an unknown channel: Rails never
// answers, so the client resends the subscribe every 500 ms forever. The server must stay
// silent and healthy, and keep serving the connection's other subscriptions.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Redis, Server, Recorder, mintToken, sleep } = require('../support');
const { CONFIG, PREFIX, loadActionCable } = require('../fixtures');

describe('@rails/actioncable subscription guarantor vs an unknown channel', () => {
  const frames = [];
  let redis;
  let server;
  let consumer;

  before(async () => {
    redis = await Redis.start();
    server = await Server.start({ config: CONFIG, env: { REDIS_URL: redis.url } });
    const ActionCable = loadActionCable(frames);
    consumer = ActionCable.createConsumer(server.cableUrl({
      token: mintToken({ user_id: 42, restaurant_id: 1, role: 'admin' }),
    }));
  });

  after(async () => {
    if (consumer) consumer.disconnect();
    try {
      if (server) await server.stop();
    } finally {
      if (redis) await redis.stop();
    }
  });

  it('resends subscribe twice a second; the server ignores it and stays healthy', async (t) => {
    const known = new Recorder('OrderChannel');
    consumer.subscriptions.create({ channel: 'OrderChannel' }, known.mixin());
    // What Hafaloha's client really sends: a stream name used as a channel class.
    const unknown = new Recorder('order_channel_1');
    const ghost = consumer.subscriptions.create({ channel: 'order_channel_1' }, unknown.mixin());
    await known.wait('connected');

    const notFound = () => server.logs.filter((l) => l.message === 'Subscription class not found');
    const start = notFound().length;
    const startedAt = Date.now();
    const health = [];
    let n = 0;
    // ~3 s of 2 Hz resubscribes, with broadcasts and health checks interleaved.
    while (Date.now() - startedAt < 3000) {
      n += 1;
      assert.equal(await redis.publish(`${PREFIX}:order_channel_1`, { type: 'order_updated', order: { id: n } }), 1);
      health.push(await server.health());
      await sleep(250);
    }
    await known.wait('received', (m) => m.order.id === n);
    const seconds = (Date.now() - startedAt) / 1000;
    const resent = notFound().length - start;

    t.diagnostic(`${resent} ignored subscribes to order_channel_1 in ${seconds.toFixed(1)} s`);
    // The client kept trying (proves the guarantor is live) ...
    assert.ok(resent >= Math.floor(seconds * 2) - 2, `only ${resent} unknown subscribes in ${seconds} s`);
    assert.ok(consumer.subscriptions.guarantor.pendingSubscriptions.includes(ghost), 'still pending');
    // ... and got nothing back: no confirm, no reject, no error.
    const sock = frames[frames.length - 1];
    assert.deepEqual(sock.frames.filter((f) => f.includes('order_channel_1\\"')), []);
    assert.equal(unknown.events.length, 0, JSON.stringify(unknown.events));
    // The rest of the connection works: every broadcast arrived, in order, on one socket.
    assert.deepEqual(known.received().map((m) => m.order.id), Array.from({ length: n }, (_, i) => i + 1));
    assert.equal(frames.length, 1, 'no reconnect');
    assert.ok(consumer.connection.isOpen());
    assert.equal(known.of('connected').length, 1);
    for (const h of health) {
      assert.equal(h.status, 200);
      assert.equal(h.body.status, 'ok');
    }
    // The only noise in the log is the "Subscription class not found" info line.
    assert.deepEqual(server.problems(), []);
    for (const line of notFound()) {
      assert.equal(line.level, 'INFO');
      assert.equal(line.channel, 'order_channel_1');
    }

    // Unsubscribing the ghost ends the resends (and lets this process exit).
    ghost.unsubscribe();
    assert.equal(consumer.subscriptions.guarantor.pendingSubscriptions.length, 0);
  });
});
