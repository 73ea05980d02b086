// limit/continue on lists (with 410 Expired once the store forgot the token's revision),
// and delete propagationPolicy: the finalizers the apiserver sets, then the real garbage
// collector (cluster/controllers) finishing Foreground and Orphan deletions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient } from '../../api/kube/index.js';
import { startControllers } from '../../cluster/controllers/index.js';
import { call, ns, describeStores, startTestServer, watch, type TestServer } from './helpers.js';

let t: TestServer;

describeStores('API paging and deletion', (kind) => {
  before(async () => { t = await startTestServer({ store: kind }); });
  after(async () => { await t?.stop(); });

  async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const cm = (name: string, extra: Record<string, unknown> = {}, labels?: Record<string, string>) =>
    ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels, ...extra }, data: { k: name } });

  test('deletecollection deletes what the label selector selects in one namespace, and only that', async () => {
    const s = t.server;
    assert.equal((await call(s, 'POST', '/api/v1/namespaces', ns('dc-a'))).status, 201);
    assert.equal((await call(s, 'POST', '/api/v1/namespaces', ns('dc-b'))).status, 201);
    for (const [namespace, name, tier] of [['dc-a', 'x1', 'x'], ['dc-a', 'x2', 'x'], ['dc-a', 'y1', 'y'], ['dc-b', 'x3', 'x']]) {
      assert.equal((await call(s, 'POST', `/api/v1/namespaces/${namespace}/configmaps`, cm(name, {}, { tier }))).status, 201);
    }
    const listed = await call(s, 'GET', '/api/v1/namespaces/dc-a/configmaps');
    const w = watch(s, `/api/v1/namespaces/dc-a/configmaps?watch=1&labelSelector=tier%3Dx&resourceVersion=${listed.body.metadata.resourceVersion}`);
    assert.equal(await w.status, 200);
    const r = await call(s, 'DELETE', '/api/v1/namespaces/dc-a/configmaps?labelSelector=tier%3Dx');
    assert.equal(r.status, 200);
    assert.equal(r.body.kind, 'ConfigMapList');
    assert.deepEqual(r.body.items.map((i: any) => i.metadata.name).sort(), ['x1', 'x2']);
    const left = (ns2: string) => call(s, 'GET', `/api/v1/namespaces/${ns2}/configmaps`).then((x) => x.body.items.map((i: any) => i.metadata.name).filter((n: string) => n !== 'kube-root-ca.crt').sort());
    assert.deepEqual(await left('dc-a'), ['y1']);
    assert.deepEqual(await left('dc-b'), ['x3'], 'another namespace is untouched');
    const deleted = [await w.next(), await w.next()];
    w.close();
    assert.deepEqual(deleted.map((e) => [e.type, e.object.metadata.name]).sort(), [['DELETED', 'x1'], ['DELETED', 'x2']]);
  });

  test('list with limit and continue pages through in key order; selectors apply before the limit', async () => {
    const s = t.server;
    await call(s, 'POST', '/api/v1/namespaces', ns('pages'));
    for (let i = 0; i < 7; i++) await call(s, 'POST', '/api/v1/namespaces/pages/configmaps', cm(`c${i}`, {}, { odd: String(i % 2 === 1) }));
    const base = '/api/v1/namespaces/pages/configmaps';
    const seen: string[] = [];
    let r = await call(s, 'GET', `${base}?limit=3`);
    assert.equal(r.status, 200);
    const rv = r.body.metadata.resourceVersion;
    assert.equal(r.body.items.length, 3);
    assert.equal(r.body.metadata.remainingItemCount, 5, 'c3..c6 and kube-root-ca.crt');
    seen.push(...r.body.items.map((x: any) => x.metadata.name));
    // Later pages read the first page's snapshot: writes between pages are not seen.
    await call(s, 'POST', `${base}`, cm('c9'));
    await call(s, 'DELETE', `${base}/c5`);
    await call(s, 'PATCH', `${base}/c4`, { data: { k: 'changed' } }, { contentType: 'application/merge-patch+json' });
    const c4: string[] = [];
    while (r.body.metadata.continue) {
      r = await call(s, 'GET', `${base}?limit=3&continue=${encodeURIComponent(r.body.metadata.continue)}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.metadata.resourceVersion, rv);
      seen.push(...r.body.items.map((x: any) => x.metadata.name));
      c4.push(...r.body.items.filter((x: any) => x.metadata.name === 'c4').map((x: any) => x.data.k));
    }
    assert.deepEqual(seen, ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'kube-root-ca.crt']);
    assert.deepEqual(c4, ['c4'], 'c4 as it was at the first page');
    // resourceVersionMatch=Exact lists the same snapshot at once.
    const exact = await call(s, 'GET', `${base}?resourceVersion=${rv}&resourceVersionMatch=Exact`);
    assert.deepEqual(exact.body.items.map((x: any) => x.metadata.name), ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'kube-root-ca.crt']);
    assert.equal(exact.body.metadata.resourceVersion, rv);

    const odd = await call(s, 'GET', `${base}?limit=1&labelSelector=odd%3Dtrue`);
    assert.deepEqual(odd.body.items.map((x: any) => x.metadata.name), ['c1']);
    assert.equal(odd.body.metadata.remainingItemCount, undefined);
    const odd2 = await call(s, 'GET', `${base}?limit=2&labelSelector=odd%3Dtrue&continue=${odd.body.metadata.continue}`);
    assert.deepEqual(odd2.body.items.map((x: any) => x.metadata.name), ['c3'], 'c5 was deleted before this list');
    assert.equal(odd2.body.metadata.continue, undefined);

    // Tables (kubectl get) carry the continue token too.
    const table = await call(s, 'GET', `${base}?limit=2`, undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
    assert.equal(table.body.kind, 'Table');
    assert.ok(table.body.metadata.continue);

    assert.equal((await call(s, 'GET', `${base}?limit=2&continue=garbage!`)).status, 400);
    const other = await call(s, 'GET', `/api/v1/namespaces/default/secrets?limit=1&continue=${odd.body.metadata.continue}`);
    assert.equal(other.status, 400, 'a token from another list is refused');

    // Once the store's history no longer reaches the token's revision, the token has expired.
    const stale = (await call(s, 'GET', `${base}?limit=1`)).body.metadata.continue;
    await call(s, 'PUT', `${base}/c0`, cm('c0', {}, { n: 'later' }));
    await t.compact();
    const gone = await call(s, 'GET', `${base}?limit=1&continue=${stale}`);
    assert.equal(gone.status, 410);
    assert.equal(gone.body.reason, 'Expired');
  });

  test('propagationPolicy: Foreground and Orphan set the GC finalizers; the garbage collector completes them', async () => {
    const s = t.server;
    await call(s, 'POST', '/api/v1/namespaces', ns('gc'));
    const base = '/api/v1/namespaces/gc/configmaps';
    const make = async (owner: string) => {
      const o = (await call(s, 'POST', base, cm(owner))).body;
      const ref = { apiVersion: 'v1', kind: 'ConfigMap', name: owner, uid: o.metadata.uid };
      await call(s, 'POST', base, cm(`${owner}-dep`, { ownerReferences: [ref] }));
    };
    const exists = async (name: string) => (await call(s, 'GET', `${base}/${name}`)).status === 200;

    // Without a garbage collector the finalizers hold the owner.
    await make('fg0');
    const fg = await call(s, 'DELETE', `${base}/fg0`, { propagationPolicy: 'Foreground' });
    assert.equal(fg.status, 200);
    assert.ok(fg.body.metadata.deletionTimestamp);
    assert.deepEqual(fg.body.metadata.finalizers, ['foregroundDeletion']);
    await make('orph');
    const orph = await call(s, 'DELETE', `${base}/orph?propagationPolicy=Orphan`);
    assert.deepEqual(orph.body.metadata.finalizers, ['orphan']);
    assert.equal((await call(s, 'DELETE', `${base}/orph`, { propagationPolicy: 'Sideways' })).status, 400);
    assert.equal(await exists('fg0'), true);

    const client = new KubeClient({ server: s.url, caPem: s.caCertPem, token: s.adminToken }, 'gc-test');
    const controllers = await startControllers({ client, rootCAPem: s.caCertPem });
    try {
      await waitFor('foreground owner and dependent removed', async () => !(await exists('fg0')) && !(await exists('fg0-dep')));
      // Orphan: the dependent stays, without its owner reference.
      await waitFor('orphaned owner removed', async () => !(await exists('orph')));
      const dep = (await call(s, 'GET', `${base}/orph-dep`)).body;
      assert.deepEqual(dep.metadata.ownerReferences ?? [], []);

      // With the collector watching: Foreground removes the dependent before the owner.
      const w = watch(s, `${base}?watch=true&resourceVersion=${(await call(s, 'GET', base)).body.metadata.resourceVersion}`);
      await make('fg');
      await call(s, 'DELETE', `${base}/fg`, { propagationPolicy: 'Foreground' });
      await waitFor('foreground owner removed', async () => !(await exists('fg')));
      await waitFor('DELETED events', async () => w.events.filter((e) => e.type === 'DELETED').length >= 2);
      w.close();
      const deletions = w.events.filter((e) => e.type === 'DELETED').map((e) => e.object.metadata.name);
      assert.deepEqual(deletions.slice(0, 2), ['fg-dep', 'fg']);

      // Background (the default): the owner goes at once, the dependent soon after.
      await make('bg');
      const bg = await call(s, 'DELETE', `${base}/bg`);
      assert.equal(bg.status, 200);
      assert.equal(await exists('bg'), false);
      await waitFor('background dependent removed', async () => !(await exists('bg-dep')));
    } finally {
      controllers.stop();
      await client.close();
    }
  });
});
