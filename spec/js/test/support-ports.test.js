'use strict';
// The port retry the browser suites rely on (spec/js/support.js `onFreePort`): a port picked
// as free can be taken by another process before the server binds it. Here it really is
// taken (a listener holds it), and the real binaries must fail with "address in use" and be
// started again on another port; any other failure must not be retried.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { Redis, Server, freePort, addressInUse, onFreePort, listen } = require('../support');
const { CONFIG } = require('../fixtures');

describe('servers started on a port someone else took', () => {
  let blocker;
  let taken;

  before(async () => {
    blocker = await listen(net.createServer());
    taken = blocker.address().port;
  });

  after(async () => {
    if (blocker) await new Promise((resolve) => blocker.close(resolve));
  });

  /** Hands out the taken port first, then free ones. */
  function takenFirst() {
    let first = true;
    return () => {
      if (first) {
        first = false;
        return Promise.resolve(taken);
      }
      return freePort();
    };
  }

  it('ferrocable on a taken PORT fails with address in use, and is started again elsewhere', async () => {
    const direct = await Server.start({ config: CONFIG, port: taken, tag: 'taken' }).then(
      () => assert.fail('ferrocable started on a port another socket holds'),
      (err) => err,
    );
    assert.ok(addressInUse(direct), `not an address-in-use error: ${direct.message}`);

    const tried = [];
    const server = await onFreePort('ferrocable', (port) => {
      tried.push(port);
      return Server.start({ config: CONFIG, port, tag: 'retried' });
    }, { pick: takenFirst() });
    try {
      assert.equal(tried.length, 2);
      assert.equal(tried[0], taken);
      assert.equal(server.port, tried[1]);
      // It answers there (503 or 200: no Redis is given, and none is needed to listen).
      const res = await server.request('GET', '/health');
      assert.ok([200, 503].includes(res.status), `status ${res.status}`);
    } finally {
      await server.stop();
    }
  });

  it('redis-server on a taken port is started again elsewhere, never mistaken for ready', async () => {
    const redis = await onFreePort('redis-server', (port) => Redis.startOn(port), { pick: takenFirst() });
    try {
      assert.notEqual(redis.port, taken);
      assert.equal((await redis.cli('PING')).trim(), 'PONG');
    } finally {
      await redis.stop();
    }
  });

  it('a failure other than address in use is not retried', async () => {
    let calls = 0;
    const err = await onFreePort('broken', () => {
      calls += 1;
      return Promise.reject(new Error('config is invalid'));
    }).then(() => assert.fail('resolved'), (e) => e);
    assert.equal(err.message, 'config is invalid');
    assert.equal(calls, 1);
  });

  it('gives up after the attempts it was given', async () => {
    let calls = 0;
    const err = await onFreePort('unlucky', () => {
      calls += 1;
      return listen(net.createServer(), taken);
    }, { attempts: 3, pick: () => Promise.resolve(taken) }).then(() => assert.fail('resolved'), (e) => e);
    assert.equal(err.code, 'EADDRINUSE');
    assert.equal(calls, 3);
  });
});
