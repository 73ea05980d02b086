import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileStore, MemoryStore, StoreError, type Store, type StoreEvent } from '../../cluster/store/index.js';

const obj = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ metadata: { name }, ...extra });

const dirs: string[] = [];
after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-store-'));
  dirs.push(d);
  return d;
}

for (const [label, make] of [['MemoryStore', () => new MemoryStore()], ['FileStore', () => new FileStore(tmpDir())]] as [string, () => Store][]) {
  test(`${label}: create/get/update/delete with revisions and CAS`, async () => {
    const s = make();
    const a = await s.create('/r/a', obj('a', { v: 1 }));
    assert.equal((a.metadata as { resourceVersion: string }).resourceVersion, '1');
    await assert.rejects(s.create('/r/a', obj('a')), (e: unknown) => e instanceof StoreError && e.code === 'AlreadyExists');
    const a2 = await s.update('/r/a', obj('a', { v: 2 }), 1);
    assert.equal((a2.metadata as { resourceVersion: string }).resourceVersion, '2');
    await assert.rejects(s.update('/r/a', obj('a', { v: 3 }), 1), (e: unknown) => e instanceof StoreError && e.code === 'Conflict');
    await assert.rejects(s.update('/r/missing', obj('x')), (e: unknown) => e instanceof StoreError && e.code === 'NotFound');
    await s.create('/r/b', obj('b'));
    await s.create('/rx/c', obj('c'));
    const l = await s.list('/r/');
    assert.deepEqual(l.items.map((i) => (i.metadata as { name: string }).name), ['a', 'b']);
    assert.equal(l.revision, 4);
    const d = await s.delete('/r/a', 2);
    assert.equal((d.metadata as { resourceVersion: string }).resourceVersion, '5');
    assert.equal(await s.get('/r/a'), undefined);
    assert.equal(await s.revision(), 5);
    await s.close();
  });

  test(`${label}: watch replays history after a revision, then live events`, async () => {
    const s = make();
    await s.create('/w/a', obj('a'));
    await s.create('/w/b', obj('b'));
    await s.update('/w/a', obj('a', { x: 1 }));
    const seen: StoreEvent[] = [];
    const cancel = await s.watch('/w/', 1, (e) => seen.push(e));
    await s.delete('/w/b');
    await s.create('/other/z', obj('z'));
    cancel();
    await s.create('/w/c', obj('c'));
    assert.deepEqual(seen.map((e) => [e.type, e.key, e.revision]), [['ADDED', '/w/b', 2], ['MODIFIED', '/w/a', 3], ['DELETED', '/w/b', 4]]);
    assert.equal((seen[1].prevObject?.metadata as { resourceVersion: string }).resourceVersion, '1');
    await s.close();
  });
}

test('MemoryStore: watch from a revision older than the history is Compacted', async () => {
  const s = new MemoryStore({ historySize: 2 });
  for (let i = 0; i < 5; i++) await s.create(`/k/${i}`, obj(String(i)));
  await assert.rejects(s.watch('/k/', 1, () => {}), (e: unknown) => e instanceof StoreError && e.code === 'Compacted');
  const seen: number[] = [];
  await s.watch('/k/', 3, (e) => seen.push(e.revision));
  assert.deepEqual(seen, [4, 5]);
});

test('FileStore: data survives close and reopen, across a snapshot compaction', async () => {
  const dir = tmpDir();
  let s = new FileStore(dir, { compactEvery: 3 });
  for (let i = 0; i < 7; i++) await s.create(`/p/${i}`, obj(String(i), { i }));
  await new Promise((r) => setImmediate(r));
  await s.update('/p/0', obj('0', { i: 100 }));
  await s.delete('/p/1');
  await s.close();
  assert.ok(fs.existsSync(path.join(dir, 'snapshot.json')), 'a snapshot was written');
  s = new FileStore(dir);
  assert.equal(await s.revision(), 9);
  assert.deepEqual((await s.get('/p/0'))?.i, 100);
  assert.equal((await s.get('/p/0'))?.metadata && ((await s.get('/p/0'))!.metadata as { resourceVersion: string }).resourceVersion, '8');
  assert.equal(await s.get('/p/1'), undefined);
  assert.equal((await s.list('/p/')).items.length, 6);
  // History before the reopen is gone: such watches must relist.
  await assert.rejects(s.watch('/p/', 2, () => {}), (e: unknown) => e instanceof StoreError && e.code === 'Compacted');
  const a = await s.create('/p/new', obj('new'));
  assert.equal((a.metadata as { resourceVersion: string }).resourceVersion, '10');
  await s.close();
});

test('FileStore: a torn last log line is ignored and cut off', async () => {
  const dir = tmpDir();
  let s = new FileStore(dir);
  await s.create('/t/a', obj('a'));
  await s.create('/t/b', obj('b'));
  await s.close();
  fs.appendFileSync(path.join(dir, 'wal.jsonl'), '{"rev":3,"op":"put","key":"/t/c","val');
  s = new FileStore(dir);
  assert.equal(await s.revision(), 2);
  assert.equal(await s.get('/t/c'), undefined);
  await s.create('/t/d', obj('d'));
  await s.close();
  s = new FileStore(dir);
  assert.ok(await s.get('/t/d'), 'writes after the torn tail are readable after reopen');
  assert.equal(await s.revision(), 3);
  await s.close();
});
