import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { call, pod, describeStores, startTestServer, watch, type TestServer } from './helpers.js';

let t: TestServer;

describeStores('API watch', (kind) => {
  before(async () => { t = await startTestServer({ store: kind }); });
  after(async () => { await t?.stop(); });

  const cm = (name: string, labels: Record<string, string> = {}) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels }, data: { v: '1' } });

  test('watch with resourceVersion=0 starts with ADDED for current objects, then live changes', async () => {
    const s = t.server;
    await call(s, 'POST', '/api/v1/namespaces/default/configmaps', cm('w0', { w: 'zero' }));
    const w = watch(s, '/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=0&labelSelector=w%3Dzero');
    assert.equal(await w.status, 200);
    const first = await w.next();
    assert.equal(first.type, 'ADDED');
    assert.equal(first.object.metadata.name, 'w0');
    assert.equal(first.object.kind, 'ConfigMap');
    await call(s, 'PATCH', '/api/v1/namespaces/default/configmaps/w0', { data: { v: '2' } }, { contentType: 'application/merge-patch+json' });
    const mod = await w.next();
    assert.equal(mod.type, 'MODIFIED');
    assert.equal(mod.object.data.v, '2');
    // Leaving the selection is seen as DELETED.
    await call(s, 'PATCH', '/api/v1/namespaces/default/configmaps/w0', { metadata: { labels: { w: 'other' } } }, { contentType: 'application/merge-patch+json' });
    assert.equal((await w.next()).type, 'DELETED');
    w.close();
  });

  test('watch from a list resourceVersion replays every later change; field selector by name', async () => {
    const s = t.server;
    const list = await call(s, 'GET', '/api/v1/namespaces/default/configmaps');
    const rv = list.body.metadata.resourceVersion;
    await call(s, 'POST', '/api/v1/namespaces/default/configmaps', cm('w1'));
    await call(s, 'POST', '/api/v1/namespaces/default/configmaps', cm('w2'));
    await call(s, 'DELETE', '/api/v1/namespaces/default/configmaps/w1');
    const w = watch(s, `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}&fieldSelector=metadata.name%3Dw1`);
    const a = await w.next();
    const d = await w.next();
    assert.deepEqual([a.type, d.type], ['ADDED', 'DELETED']);
    assert.ok(Number(d.object.metadata.resourceVersion) > Number(a.object.metadata.resourceVersion));
    w.close();
  });

  test('watch with a too old resourceVersion gets an ERROR event with 410 Expired', async () => {
    // A FileStore keeps no history from before it was opened: an early revision is too old after a restart.
    const dir = t.dir + '-410';
    const first = await startTestServer({ dir, store: kind });
    const early = (await call(first.server, 'GET', '/api/v1/namespaces')).body.metadata.resourceVersion;
    await call(first.server, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'later' } });
    await first.stop();
    const again = await startTestServer({ dir, store: kind });
    try {
      // etcd keeps history across restarts until it is compacted, as Kubernetes' etcd is.
      if (kind === 'etcd') await again.compact();
      const w = watch(again.server, `/api/v1/namespaces?watch=1&resourceVersion=${early}`);
      assert.equal(await w.status, 200);
      const ev = await w.next();
      assert.equal(ev.type, 'ERROR');
      assert.equal(ev.object.kind, 'Status');
      assert.equal(ev.object.code, 410);
      assert.equal(ev.object.reason, 'Expired');
      await w.ended;
    } finally {
      await again.stop();
      const fs = await import('node:fs');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('watch honours timeoutSeconds and sends bookmarks only when asked', async () => {
    const s = t.server;
    const started = Date.now();
    const w = watch(s, '/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1');
    await w.ended;
    assert.ok(Date.now() - started < 3000);
  });

  test('watch headers arrive at once, before any event', async () => {
    const s = t.server;
    const w = watch(s, '/api/v1/namespaces/kube-public/secrets?watch=1&resourceVersion=0&timeoutSeconds=20');
    try {
      const status = await Promise.race([w.status, new Promise<string>((r) => setTimeout(() => r('no headers within 5 s'), 5000))]);
      assert.equal(status, 200);
      assert.deepEqual(w.events, []);
    } finally {
      w.close();
    }
  });

  test('sendInitialEvents: current state, a BOOKMARK marking the end of it, then changes; validated like Kubernetes', async () => {
    const s = t.server;
    for (const n of ['init-a', 'init-b']) assert.equal((await call(s, 'POST', '/api/v1/namespaces/default/configmaps', cm(n, { init: 'yes' }))).status, 201);
    const base = '/api/v1/namespaces/default/configmaps?watch=1&labelSelector=init%3Dyes';
    const w = watch(s, `${base}&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan`);
    try {
      const first = [await w.next(), await w.next()];
      assert.deepEqual(first.map((e) => [e.type, e.object.metadata.name]).sort(), [['ADDED', 'init-a'], ['ADDED', 'init-b']]);
      const end = await w.next();
      assert.equal(end.type, 'BOOKMARK');
      assert.equal(end.object.kind, 'ConfigMap');
      assert.deepEqual(end.object.metadata.annotations, { 'k8s.io/initial-events-end': 'true' });
      assert.ok(Number(end.object.metadata.resourceVersion) >= Number(first[1].object.metadata.resourceVersion));
      await call(s, 'PATCH', '/api/v1/namespaces/default/configmaps/init-a', { data: { v: '2' } }, { contentType: 'application/merge-patch+json' });
      const change = await w.next();
      assert.equal(change.type, 'MODIFIED');
      assert.equal(change.object.data.v, '2');
    } finally {
      w.close();
    }
    // Without allowWatchBookmarks there is no bookmark in a plain watch from 0 either.
    const plain = watch(s, `${base}&resourceVersion=0&timeoutSeconds=1`);
    await plain.ended;
    assert.deepEqual(plain.events.map((e) => e.type), ['ADDED', 'ADDED']);
    const noBookmarks = await call(s, 'GET', `${base}&sendInitialEvents=true&resourceVersionMatch=NotOlderThan`);
    assert.equal(noBookmarks.status, 400);
    assert.match(noBookmarks.body.message, /sendInitialEvents requires allowWatchBookmarks=true/);
    const noMatch = await call(s, 'GET', `${base}&sendInitialEvents=true&allowWatchBookmarks=true`);
    assert.equal(noMatch.status, 400);
    assert.match(noMatch.body.message, /sendInitialEvents requires setting resourceVersionMatch to NotOlderThan/);
  });

  test('graceful pod deletion: binding, deletionTimestamp, then removal with grace 0', async () => {
    const s = t.server;
    await call(s, 'POST', '/api/v1/namespaces/default/pods', pod('graceful'));
    const bind = await call(s, 'POST', '/api/v1/namespaces/default/pods/graceful/binding', { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'graceful' }, target: { apiVersion: 'v1', kind: 'Node', name: 'node-1' } });
    assert.equal(bind.status, 201);
    const bound = await call(s, 'GET', '/api/v1/namespaces/default/pods/graceful');
    assert.equal(bound.body.spec.nodeName, 'node-1');
    const again = await call(s, 'POST', '/api/v1/namespaces/default/pods/graceful/binding', { target: { name: 'node-2' } });
    assert.equal(again.status, 409);

    const w = watch(s, `/api/v1/namespaces/default/pods?watch=1&resourceVersion=${bound.body.metadata.resourceVersion}&fieldSelector=metadata.name%3Dgraceful`);
    const del = await call(s, 'DELETE', '/api/v1/namespaces/default/pods/graceful', { gracePeriodSeconds: 5 });
    assert.equal(del.status, 200);
    assert.ok(del.body.metadata.deletionTimestamp);
    assert.equal(del.body.metadata.deletionGracePeriodSeconds, 5);
    assert.equal((await call(s, 'GET', '/api/v1/namespaces/default/pods/graceful')).status, 200, 'still there during the grace period');
    assert.equal((await w.next()).type, 'MODIFIED');
    const final = await call(s, 'DELETE', '/api/v1/namespaces/default/pods/graceful?gracePeriodSeconds=0');
    assert.equal(final.status, 200);
    assert.equal((await call(s, 'GET', '/api/v1/namespaces/default/pods/graceful')).status, 404);
    assert.equal((await w.next()).type, 'DELETED');
    w.close();
  });

  test('finalizers hold deletion until the list is empty', async () => {
    const s = t.server;
    await call(s, 'POST', '/api/v1/namespaces/default/configmaps', { ...cm('fin'), metadata: { name: 'fin', finalizers: ['example.com/hold'] } });
    const del = await call(s, 'DELETE', '/api/v1/namespaces/default/configmaps/fin');
    assert.ok(del.body.metadata.deletionTimestamp);
    assert.equal((await call(s, 'GET', '/api/v1/namespaces/default/configmaps/fin')).status, 200);
    await call(s, 'PATCH', '/api/v1/namespaces/default/configmaps/fin', { metadata: { finalizers: null } }, { contentType: 'application/merge-patch+json' });
    assert.equal((await call(s, 'GET', '/api/v1/namespaces/default/configmaps/fin')).status, 404);
  });
});
