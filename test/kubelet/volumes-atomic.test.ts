// ConfigMap/Secret/projected volumes use the kubelet's AtomicWriter layout: a reader in
// another process, looping while the volume is updated many times, never sees a mix of
// versions or a half-written file. Loopback only (an in-process API server), no lock needed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { KubeClient, R, type Pod } from '../../api/kube/index.js';
import { startApiServer, type ApiServer } from '../../cluster/apiserver/index.js';
import { MemoryStore } from '../../cluster/store/index.js';
import { writeAtomically } from '../../cluster/kubelet/atomic-writer.js';
import { PodVolumes } from '../../cluster/kubelet/volumes.js';

/** Big enough that a half-written file would show; every file of version n holds `body(n)`. */
const body = (n: number): string => `v${n};`.repeat(20_000);

/**
 * A reader process: resolves `..data` once per round and reads the named files there; a
 * round whose directory vanished mid-read (the old version was cleaned up) does not count.
 * Reports rounds read and every mixed or partial round.
 */
const READER = `
const fs = require('fs'), path = require('path');
const [dir, ...names] = process.argv.slice(1);
let rounds = 0; const bad = [];
const check = (s) => /^(v\\d+;)\\1*$/.test(s) ? s.slice(0, s.indexOf(';')) : 'partial(' + s.length + ')';
const loop = () => {
  for (let i = 0; i < 50; i++) {
    let data;
    try { data = path.join(dir, fs.readlinkSync(path.join(dir, '..data'))); } catch { continue; }
    let versions;
    try { versions = names.map((n) => check(fs.readFileSync(path.join(data, n), 'utf8'))); } catch { continue; }
    rounds++;
    if (new Set(versions).size !== 1 || versions[0].startsWith('partial')) bad.push(versions.join(','));
    try { const top = check(fs.readFileSync(path.join(dir, names[0]), 'utf8')); if (top.startsWith('partial')) bad.push('top ' + top); } catch {}
  }
  setImmediate(loop);
};
process.on('SIGTERM', () => { console.log(JSON.stringify({ rounds, bad: bad.slice(0, 5), badCount: bad.length })); process.exit(0); });
console.log('ready');
loop();
`;

async function withReader(dir: string, names: string[], work: () => Promise<void>): Promise<{ rounds: number; bad: string[]; badCount: number }> {
  const child = spawn(process.execPath, ['-e', READER, dir, ...names], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  await new Promise<void>((resolve) => { const t = setInterval(() => { if (out.includes('ready')) { clearInterval(t); resolve(); } }, 10); });
  try {
    await work();
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  return JSON.parse(out.split('\n').find((l) => l.startsWith('{')) ?? '{}') as { rounds: number; bad: string[]; badCount: number };
}

describe('atomic volume updates', { timeout: 120_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-atomic-'));
  let api: ApiServer | undefined;
  let client: KubeClient;

  before(async () => {
    api = await startApiServer({ dataDir: path.join(tmp, 'api'), store: new MemoryStore(), serviceCIDR: '10.105.0.0/16', listen: [{ host: '127.0.0.1', port: 0 }] });
    client = KubeClient.fromKubeconfig(api.kubeconfigPath);
  });
  after(async () => {
    await client?.close();
    await api?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('writeAtomically: files are symlinks through ..data; a reader sees 300 updates whole, never mixed', async () => {
    const dir = path.join(tmp, 'direct');
    const files = (n: number) => [{ path: 'a', content: body(n), mode: 0o644 }, { path: 'sub/b', content: body(n), mode: 0o600 }, { path: 'c', content: body(n), mode: 0o644 }];
    writeAtomically(dir, files(0));
    assert.equal(fs.readlinkSync(path.join(dir, 'a')), path.join('..data', 'a'));
    assert.equal(fs.readlinkSync(path.join(dir, 'sub')), path.join('..data', 'sub'));
    assert.match(fs.readlinkSync(path.join(dir, '..data')), /^\.\.\d{4}_/);
    assert.equal(fs.statSync(path.join(dir, 'sub', 'b')).mode & 0o777, 0o600);
    const r = await withReader(dir, ['a', 'sub/b', 'c'], async () => {
      for (let n = 1; n <= 300; n++) {
        writeAtomically(dir, n === 300 ? files(n).slice(0, 2) : files(n));
        await new Promise((res) => setImmediate(res));
      }
    });
    assert.deepEqual(r.bad, [], `${r.badCount} mixed or partial rounds of ${r.rounds}`);
    assert.ok(r.rounds > 0, 'the reader read');
    assert.equal(fs.existsSync(path.join(dir, 'c')), false, 'a removed key is gone');
    assert.equal(fs.readdirSync(dir).filter((e) => /^\.\.\d/.test(e)).length, 1, 'old data directories are removed');
  });

  it('a projected volume (configMap, secret, downward API, token) is one atomic payload, refreshed as a whole', async () => {
    await client.create(R.serviceAccounts, { metadata: { name: 'default', namespace: 'default' } });
    await client.create(R.configMaps, { metadata: { name: 'cfg', namespace: 'default' }, data: { a: body(0), b: body(0) } });
    await client.create(R.secrets, { metadata: { name: 'sec', namespace: 'default' }, stringData: { s: 'secret-1' } });
    const pod = await client.create<Pod>(R.pods, {
      metadata: { name: 'reader', namespace: 'default' },
      spec: {
        containers: [{ name: 'c', image: 'x' }],
        volumes: [{ name: 'all', projected: { sources: [
          { configMap: { name: 'cfg' } },
          { secret: { name: 'sec', items: [{ key: 's', path: 'creds/s' }] } },
          { downwardAPI: { items: [{ path: 'name', fieldRef: { fieldPath: 'metadata.name' } }] } },
          { serviceAccountToken: { path: 'token', expirationSeconds: 3600 } },
        ] } }],
      },
    });
    const vols = new PodVolumes(client, pod, path.join(tmp, 'pod'));
    try {
      await vols.prepare({ podIP: '10.235.0.9' });
      const dir = path.join(tmp, 'pod', 'volumes', 'all');
      for (const f of ['a', 'b', 'creds', 'name', 'token']) assert.equal(fs.readlinkSync(path.join(dir, f)), path.join('..data', f), `${f} is a symlink through ..data`);
      assert.equal(fs.readFileSync(path.join(dir, 'creds/s'), 'utf8'), 'secret-1');
      assert.equal(fs.readFileSync(path.join(dir, 'name'), 'utf8'), 'reader');
      assert.match(fs.readFileSync(path.join(dir, 'token'), 'utf8'), /^ey/);
      vols.startRefresh(20);
      const r = await withReader(dir, ['a', 'b'], async () => {
        for (let n = 1; n <= 25; n++) {
          await client.update(R.configMaps, { metadata: { name: 'cfg', namespace: 'default' }, data: { a: body(n), b: body(n) } });
          await new Promise((res) => setTimeout(res, 30));
        }
        await client.update(R.secrets, { metadata: { name: 'sec', namespace: 'default' }, stringData: { s: 'secret-2' } });
        const deadline = Date.now() + 20_000;
        while (Date.now() < deadline && !(fs.readFileSync(path.join(dir, 'a'), 'utf8') === body(25) && fs.readFileSync(path.join(dir, 'creds/s'), 'utf8') === 'secret-2')) {
          await new Promise((res) => setTimeout(res, 50));
        }
      });
      assert.deepEqual(r.bad, [], `${r.badCount} mixed or partial rounds of ${r.rounds}`);
      assert.equal(fs.readFileSync(path.join(dir, 'a'), 'utf8'), body(25), 'the last version arrived');
      assert.equal(fs.readFileSync(path.join(dir, 'creds/s'), 'utf8'), 'secret-2');
      assert.match(fs.readFileSync(path.join(dir, 'token'), 'utf8'), /^ey/, 'the token stays in the payload');
      assert.equal(fs.readdirSync(dir).filter((e) => /^\.\.\d/.test(e)).length, 1, 'one data directory');
    } finally {
      vols.close();
    }
  });
});
