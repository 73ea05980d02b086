// Event TTL: Events not written for --event-ttl are removed; a write keeps an Event alive.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { call, describeStores, startTestServer, type TestServer } from './helpers.js';
import { durationFlag, parseArgs } from '../../cli/args.js';
import { DEFAULT_EVENT_TTL_SECONDS } from '../../cluster/apiserver/event-ttl.js';

let t: TestServer;
const TTL_SECONDS = 3;

const event = (name: string, message: string) => ({
  apiVersion: 'v1', kind: 'Event', metadata: { name },
  involvedObject: { kind: 'Pod', namespace: 'default', name: 'p' }, reason: 'Testing', message, type: 'Normal',
});

describeStores('Event TTL', (kind) => {
  before(async () => { t = await startTestServer({ store: kind, eventTTLSeconds: TTL_SECONDS }); });
  after(async () => { await t?.stop(); });

  test('an Event expires TTL after its last write; updating it restarts the clock; other kinds stay', async () => {
    const s = t.server;
    const base = '/api/v1/namespaces/default/events';
    assert.equal((await call(s, 'POST', base, event('old', 'a'))).status, 201);
    assert.equal((await call(s, 'POST', base, event('kept', 'a'))).status, 201);
    assert.equal((await call(s, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'not-an-event' } })).status, 201);
    // Keep "kept" written every 0.25 s, well within the TTL (generous for a loaded machine), until "old" has expired.
    const started = Date.now();
    let n = 0;
    while ((await call(s, 'GET', `${base}/old`)).status === 200) {
      assert.ok(Date.now() - started < 15_000, 'event "old" still exists 15 s after its only write (TTL 3 s)');
      await new Promise((r) => setTimeout(r, 250));
      const upd = await call(s, 'PATCH', `${base}/kept`, { message: `update ${++n}` }, { contentType: 'application/merge-patch+json' });
      assert.equal(upd.status, 200, JSON.stringify(upd.body));
    }
    assert.ok(Date.now() - started >= (TTL_SECONDS - 0.5) * 1000, 'not removed before its TTL');
    assert.equal((await call(s, 'GET', `${base}/kept`)).status, 200, 'a recently written Event stays');
    assert.equal((await call(s, 'GET', '/api/v1/namespaces/default/configmaps/not-an-event')).status, 200);
    // Without writes, "kept" goes too.
    const deadline = Date.now() + 15_000;
    while ((await call(s, 'GET', `${base}/kept`)).status === 200) {
      assert.ok(Date.now() < deadline, 'event "kept" not removed after writes stopped');
      await new Promise((r) => setTimeout(r, 250));
    }
  });
});

test('trellis up --event-ttl takes a Go duration (kube-apiserver form), 1 h by default', () => {
  const ttl = (...argv: string[]) => durationFlag(parseArgs(['up', ...argv]), 'event-ttl', DEFAULT_EVENT_TTL_SECONDS);
  assert.equal(ttl(), 3600);
  assert.equal(ttl('--event-ttl', '30m'), 1800);
  assert.equal(ttl('--event-ttl=1h30m'), 5400);
  assert.equal(ttl('--event-ttl', '1h0m0s'), 3600);
  assert.equal(ttl('--event-ttl', '90s'), 90);
  assert.throws(() => ttl('--event-ttl', '10'), /--event-ttl: "10" is not a duration/);
  assert.throws(() => ttl('--event-ttl', '0s'), /--event-ttl: 0s must be greater than zero/);
  assert.throws(() => ttl('--event-ttl'), /--event-ttl needs a value/);
});
