// The push queue on its own: bounded concurrency, one push per queued key, a key queued
// during its own push pushed again after it, the event loop served between pushes, and
// first pushes spread by the token bucket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PushQueue, TokenBucket } from '../../pilot/xds/push-queue.js';

test('push queue: at most `concurrency` in flight, duplicates merged, re-queued during a push runs again', async () => {
  let inFlight = 0, maxInFlight = 0;
  const runs: number[] = [];
  const release: (() => void)[] = [];
  const q = new PushQueue<number>(async (k) => {
    inFlight++; maxInFlight = Math.max(maxInFlight, inFlight); runs.push(k);
    await new Promise<void>((r) => release.push(r));
    inFlight--;
  }, { concurrency: 3 });
  for (let k = 0; k < 10; k++) q.enqueue(k);
  q.enqueue(4); // already queued: merged
  for (let i = 0; i < 100 && inFlight < 3; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(inFlight, 3);
  q.enqueue(0); // in flight: runs again after its push
  const idle = q.idle();
  while (runs.length < 11 || release.length) {
    release.shift()?.();
    await new Promise((r) => setTimeout(r, 1));
  }
  await idle;
  assert.equal(maxInFlight, 3);
  assert.deepEqual(runs.slice().sort((a, b) => a - b), [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test('push queue: yields to the event loop between pushes', async () => {
  const order: string[] = [];
  const q = new PushQueue<number>(async (k) => { order.push(`push ${k}`); }, { concurrency: 100 });
  for (let k = 0; k < 3; k++) q.enqueue(k);
  setImmediate(() => order.push('io'));
  await q.idle();
  // A callback queued after the pushes started runs before the last one.
  assert.ok(order.indexOf('io') < order.indexOf('push 2'), order.join(', '));
});

test('push queue: first pushes of new connections take tokens (a reconnect storm is spread)', async () => {
  const at: number[] = [];
  const q = new PushQueue<number>(async () => { at.push(Date.now()); }, { initialPerSecond: 20, initialBurst: 2 });
  const t0 = Date.now();
  for (let k = 0; k < 6; k++) q.enqueue(k, true);
  await q.idle();
  assert.equal(at.length, 6);
  // 2 at once, then 4 more at 20/s: the last no earlier than ~200 ms after the start.
  assert.ok(at[5] - t0 >= 180, `last first-push after ${at[5] - t0} ms`);
  const b = new TokenBucket(10, 1);
  assert.equal(b.take(), 0);
  assert.ok(b.take() > 0, 'an empty bucket makes the caller wait');
});
