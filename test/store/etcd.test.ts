// EtcdStore on a real etcd: the store contract MemoryStore/FileStore pass, CAS under
// contention, compaction -> Compacted, durability across SIGKILL, and the API server on it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EtcdStore, StoreError, type StoreEvent } from '../../cluster/store/index.js';
import { startApiServer, type ApiServer } from '../../cluster/apiserver/index.js';
import { etcdSkipReason, startEtcd, type EtcdCluster } from '../support/etcd.js';
import { call, watch } from '../apiserver/helpers.js';

const skip = etcdSkipReason();
const obj = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ metadata: { name }, ...extra });
const rvOf = (o: Record<string, unknown> | undefined): number => Number((o?.metadata as { resourceVersion: string }).resourceVersion);
const isCode = (code: string) => (e: unknown): boolean => e instanceof StoreError && e.code === code;

let etcd: EtcdCluster;
const stores: EtcdStore[] = [];
let n = 0;
/** A store on its own key prefix, so tests sharing one etcd do not see each other's keys. */
function makeStore(prefix = `/t${++n}`, endpoints = etcd.endpoints): EtcdStore {
  const s = new EtcdStore({ endpoints, prefix });
  stores.push(s);
  return s;
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

before(async () => { if (!skip) etcd = await startEtcd(); });
after(async () => {
  for (const s of stores) await s.close();
  await etcd?.stop();
});

test('EtcdStore: create/get/update/delete with revisions and CAS', { skip }, async () => {
  const s = makeStore();
  const r0 = await s.revision();
  const a = await s.create('/r/a', obj('a', { v: 1 }));
  assert.equal(rvOf(a), r0 + 1);
  assert.deepEqual(await s.get('/r/a'), a);
  await assert.rejects(s.create('/r/a', obj('a')), isCode('AlreadyExists'));
  // A stale resourceVersion in the value is ignored: the revision comes from etcd.
  const a2 = await s.update('/r/a', { metadata: { name: 'a', resourceVersion: '999' }, v: 2 }, r0 + 1);
  assert.equal(rvOf(a2), r0 + 2);
  await assert.rejects(s.update('/r/a', obj('a', { v: 3 }), r0 + 1), isCode('Conflict'));
  await assert.rejects(s.update('/r/missing', obj('x')), isCode('NotFound'));
  await assert.rejects(s.delete('/r/missing'), isCode('NotFound'));
  await s.create('/r/b', obj('b'));
  await s.create('/rx/c', obj('c'));
  const l = await s.list('/r/');
  assert.deepEqual(l.items.map((i) => (i.metadata as { name: string }).name), ['a', 'b']);
  assert.deepEqual(l.items.map(rvOf), [r0 + 2, r0 + 3]);
  assert.equal(l.revision, r0 + 4);
  await assert.rejects(s.delete('/r/a', r0 + 1), isCode('Conflict'));
  const d = await s.delete('/r/a', r0 + 2);
  assert.equal(rvOf(d), r0 + 5);
  assert.equal(d.v, 2);
  assert.equal(await s.get('/r/a'), undefined);
  assert.equal(await s.revision(), r0 + 5);
});

test('EtcdStore: watch replays history after a revision, then live events', { skip }, async () => {
  const s = makeStore();
  const r0 = await s.revision();
  await s.create('/w/a', obj('a'));
  await s.create('/w/b', obj('b'));
  await s.update('/w/a', obj('a', { x: 1 }));
  const seen: StoreEvent[] = [];
  const cancel = await s.watch('/w/', r0 + 1, (e) => seen.push(e));
  await s.delete('/w/b');
  await s.create('/other/z', obj('z'));
  await until(() => seen.length >= 3, 'three watch events');
  cancel();
  await s.create('/w/c', obj('c'));
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(seen.map((e) => [e.type, e.key, e.revision]), [['ADDED', '/w/b', r0 + 2], ['MODIFIED', '/w/a', r0 + 3], ['DELETED', '/w/b', r0 + 4]]);
  assert.equal(rvOf(seen[1].prevObject), r0 + 1);
  assert.equal(rvOf(seen[1].object), r0 + 3);
  assert.equal(rvOf(seen[2].object), r0 + 4, 'a deleted object carries the deletion revision');
});

test('EtcdStore: a list larger than one page is complete, ordered and read at one revision', { skip }, async () => {
  const s = new EtcdStore({ endpoints: etcd.endpoints, prefix: `/t${++n}`, listPageSize: 50 });
  stores.push(s);
  const names = Array.from({ length: 123 }, (_, i) => `o-${String(i).padStart(5, '0')}`);
  for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map((nm) => s.create(`/big/${nm}`, obj(nm))));
  const l = await s.list('/big/');
  assert.deepEqual(l.items.map((o) => (o.metadata as { name: string }).name), names);
  assert.equal(l.revision, await s.revision());
});

test('EtcdStore: concurrent compare-and-swap updates: exactly one wins', { skip }, async () => {
  const s = makeStore();
  const a = await s.create('/cas/a', obj('a', { n: 0 }));
  const results = await Promise.allSettled([1, 2, 3, 4, 5].map((i) => s.update('/cas/a', obj('a', { n: i }), rvOf(a))));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  for (const r of results) if (r.status === 'rejected') assert.ok(isCode('Conflict')(r.reason));
  const winner = results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<Record<string, unknown>>;
  assert.deepEqual(await s.get('/cas/a'), winner.value);
});

test('EtcdStore: watch from a compacted revision is Compacted; from the compaction point it works', { skip }, async () => {
  const s = makeStore();
  const r0 = await s.revision();
  for (let i = 0; i < 5; i++) await s.create(`/k/${i}`, obj(String(i)));
  await s.compact(r0 + 3);
  await assert.rejects(s.watch('/k/', r0 + 1, () => {}), isCode('Compacted'));
  const seen: number[] = [];
  const cancel = await s.watch('/k/', r0 + 3, (e) => seen.push(e.revision));
  await until(() => seen.length >= 2, 'events after the compaction point');
  cancel();
  assert.deepEqual(seen, [r0 + 4, r0 + 5]);
});

test('EtcdStore: every acknowledged write survives SIGKILL of etcd mid-stream and a restart', { skip }, async () => {
  const prefix = `/t${++n}`;
  const s = makeStore(prefix);
  const m = etcd.members[0];
  const pid = m.pid;
  const acked = new Map<string, number>();
  // A watch open across the crash resumes after the restart from its last delivered revision.
  const watcher = makeStore(prefix);
  const seen: StoreEvent[] = [];
  await watcher.watch('/d/', await watcher.revision(), (e) => seen.push(e));
  let killed: Promise<void> | undefined;
  // Four writers stream creates; etcd is killed after 40 acknowledgements, while writes are in flight.
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; ; i++) {
      const key = `/d/${w}-${i}`;
      try {
        acked.set(key, rvOf(await s.create(key, obj(`${w}-${i}`, { w, i }))));
      } catch {
        return; // etcd is gone: this write was never acknowledged
      }
      if (acked.size >= 40 && !killed) killed = m.kill('SIGKILL');
    }
  };
  await Promise.all([0, 1, 2, 3].map(writer));
  await killed;
  await s.close();
  await m.restart();
  assert.notEqual(m.pid, pid);
  const again = makeStore(prefix);
  const l = await again.list('/d/');
  const stored = new Map(l.items.map((o) => [`/d/${(o.metadata as { name: string }).name}`, rvOf(o)]));
  assert.ok(acked.size >= 40);
  for (const [key, rv] of acked) assert.equal(stored.get(key), rv, `acknowledged write ${key} at revision ${rv} is there`);
  const last = Math.max(...stored.values());
  const next = await again.create('/d/after', obj('after'));
  assert.ok(rvOf(next) > last, 'revisions keep increasing after the restart');
  await until(() => seen.some((e) => e.key === '/d/after'), 'the watch to resume after the restart', 10_000);
  const revs = seen.map((e) => e.revision);
  assert.deepEqual(revs, [...new Set(revs)].sort((x, y) => x - y), 'no event twice, in revision order');
  for (const key of acked.keys()) assert.ok(seen.some((e) => e.key === key && e.type === 'ADDED'), `the watch saw ${key}`);
});

test('API server over EtcdStore: create, get, list and watch; too old watch is 410', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-apiserver-etcd-'));
  const store = makeStore();
  let server: ApiServer | undefined;
  try {
    server = await startApiServer({ dataDir: dir, listen: [{ host: '127.0.0.1', port: 0 }], store });
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'on-etcd' }, data: { v: '1' } };
    const created = await call(server, 'POST', '/api/v1/namespaces/default/configmaps', cm);
    assert.equal(created.status, 201);
    const rv = Number(created.body.metadata.resourceVersion);
    assert.equal(rv, rvOf(await store.get('/registry/configmaps/default/on-etcd')), 'resourceVersion is the etcd modRevision');
    const got = await call(server, 'GET', '/api/v1/namespaces/default/configmaps/on-etcd');
    assert.equal(got.status, 200);
    assert.equal(got.body.data.v, '1');
    assert.equal(got.body.kind, 'ConfigMap');
    assert.equal((await call(server, 'POST', '/api/v1/namespaces/default/configmaps', cm)).status, 409);
    const list = await call(server, 'GET', '/api/v1/namespaces/default/configmaps');
    assert.ok(list.body.items.some((i: { metadata: { name: string } }) => i.metadata.name === 'on-etcd'));

    const w = watch(server, `/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${list.body.metadata.resourceVersion}`);
    assert.equal(await w.status, 200);
    const patched = await call(server, 'PATCH', '/api/v1/namespaces/default/configmaps/on-etcd', { data: { v: '2' } }, { contentType: 'application/merge-patch+json' });
    assert.equal(patched.status, 200);
    const stale = await call(server, 'PUT', '/api/v1/namespaces/default/configmaps/on-etcd', { ...cm, metadata: { name: 'on-etcd', resourceVersion: String(rv) } });
    assert.equal(stale.status, 409, 'a stale resourceVersion is a Conflict');
    const ev = await w.next();
    assert.equal(ev.type, 'MODIFIED');
    assert.equal(ev.object.data.v, '2');
    assert.equal(ev.object.metadata.resourceVersion, patched.body.metadata.resourceVersion);
    await call(server, 'DELETE', '/api/v1/namespaces/default/configmaps/on-etcd');
    assert.equal((await w.next()).type, 'DELETED');
    w.close();

    await store.compact(await store.revision());
    const old = watch(server, `/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${rv}`);
    const err = await old.next();
    assert.equal(err.type, 'ERROR');
    assert.equal(err.object.code, 410);
    assert.equal(err.object.reason, 'Expired');
    old.close();
  } finally {
    await server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('API server over a 3-member etcd keeps accepting writes after one member is killed', { skip }, async () => {
  const cluster = await startEtcd({ members: 3 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-apiserver-etcd3-'));
  const store = makeStore('', cluster.endpoints);
  let server: ApiServer | undefined;
  try {
    server = await startApiServer({ dataDir: dir, listen: [{ host: '127.0.0.1', port: 0 }], store });
    const cm = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { v: '1' } });
    assert.equal((await call(server, 'POST', '/api/v1/namespaces/default/configmaps', cm('before'))).status, 201);
    await cluster.members[0].kill('SIGKILL');
    for (let i = 0; i < 10; i++) {
      const r = await call(server, 'POST', '/api/v1/namespaces/default/configmaps', cm(`after-${i}`));
      assert.equal(r.status, 201, `create after-${i} with one member down: ${JSON.stringify(r.body)}`);
    }
    const list = await call(server, 'GET', '/api/v1/namespaces/default/configmaps');
    assert.equal(list.body.items.filter((i: { metadata: { name: string } }) => i.metadata.name.startsWith('after-')).length, 10);
  } finally {
    await server?.close();
    await store.close();
    await cluster.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
