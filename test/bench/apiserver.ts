// API server benchmark: the embedded FileStore, the MemoryStore and a real one-member etcd
// (Debian etcd-server) on this machine, side by side in one run:
//   1. store write throughput: sequential creates, each acknowledged only once durable
//      (FileStore fdatasync per write; etcd fsyncs its WAL per commit; MemoryStore is not durable);
//   2. through the API server (in a child process): create latency at a fixed 200 creates/s
//      for 10 s, open loop;
//   3. watch delivery to 100 concurrent watchers: create request sent -> event at each watcher.
// Prints a table with ratios to etcd and writes it to test/bench/results/apiserver.md.
// Run: node dist/test/bench/apiserver.js   (keeps under 3 minutes; loopback only)
import { fork, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdStore, FileStore, MemoryStore, type Store } from '../../cluster/store/index.js';
import { etcdSkipReason, startEtcd, type EtcdCluster } from '../support/etcd.js';
import type { Backend, ServerReady } from './apiserver-server.js';
import { Client, configMap, createsAtRate, median, percentile, watchFanout } from './apiserver-load.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.resolve(HERE, '../../../test/bench/results/apiserver.md');
const BACKENDS: Backend[] = ['file', 'memory', 'etcd'];
const STORE_RUN_S = 2;
const STORE_RUNS = 3;
const CREATE_RATE = 200;
const CREATE_SECONDS = 10;
const WATCHERS = 100;
const WATCH_WRITES = 50;
const WATCH_RATE = 20;

interface Row { metric: string; better: 'higher' | 'lower'; values: Record<Backend, number> }

async function storeWritesPerSecond(make: () => Store): Promise<number> {
  const s = make();
  try {
    const value = configMap('x');
    let n = 0;
    const end = performance.now() + STORE_RUN_S * 1000;
    const start = performance.now();
    while (performance.now() < end) await s.create(`/registry/configmaps/bench/w-${n++}`, value);
    return n / ((performance.now() - start) / 1000);
  } finally {
    await s.close();
  }
}

function startServer(backend: Backend, etcd: EtcdCluster): Promise<{ child: ChildProcess; ready: ServerReady }> {
  const child = fork(path.join(HERE, 'apiserver-server.js'), [backend, etcd.endpoints.join(',')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ child, ready: m as ServerReady }));
    child.once('exit', (code) => reject(new Error(`apiserver (${backend}) exited with ${String(code)} before it was ready`)));
  });
}

function stopServer(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) { resolve(); return; }
    const t = setTimeout(() => { if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL'); }, 5000);
    child.once('exit', () => { clearTimeout(t); resolve(); });
    child.send('stop');
  });
}

const fmt = (v: number): string => (Number.isNaN(v) ? 'n/a' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

function table(rows: Row[]): string {
  const head = '| metric | FileStore | MemoryStore | etcd | FileStore / etcd | MemoryStore / etcd |';
  const lines = [head, '|---|---:|---:|---:|---:|---:|'];
  for (const r of rows) {
    const v = r.values;
    const ratio = (b: Backend): string => (v.etcd > 0 ? `${(v[b] / v.etcd).toFixed(2)}x` : 'n/a');
    lines.push(`| ${r.metric} (${r.better} is better) | ${fmt(v.file)} | ${fmt(v.memory)} | ${fmt(v.etcd)} | ${ratio('file')} | ${ratio('memory')} |`);
  }
  return lines.join('\n');
}

function etcdVersion(): string {
  try { return execFileSync('/usr/bin/etcd', ['--version'], { encoding: 'utf8' }).split('\n')[0]; } catch { return 'etcd (version unknown)'; }
}

async function main(): Promise<void> {
  const skip = etcdSkipReason();
  if (skip) { console.error(`bench:apiserver skipped: ${skip}`); return; }
  const t0 = performance.now();
  const etcd = await startEtcd();
  const tmp: string[] = [];
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    // 1. Store write throughput, in this process, a fresh store per run.
    const makers: Record<Backend, () => Store> = {
      file: () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-store-')); tmp.push(d); return new FileStore(d); },
      memory: () => new MemoryStore(),
      etcd: (() => { let run = 0; return () => new EtcdStore({ endpoints: etcd.endpoints, prefix: `/bench-store-${++run}` }); })(),
    };
    const writes = { file: 0, memory: 0, etcd: 0 } as Record<Backend, number>;
    for (const b of BACKENDS) {
      const runs: number[] = [];
      for (let i = 0; i < STORE_RUNS; i++) runs.push(await storeWritesPerSecond(makers[b]));
      writes[b] = median(runs);
      console.log(`store ${b}: ${runs.map((r) => r.toFixed(0)).join(', ')} writes/s -> median ${writes[b].toFixed(0)}`);
    }
    rows.push({ metric: `store sequential durable writes/s (median of ${STORE_RUNS} x ${STORE_RUN_S} s)`, better: 'higher', values: writes });

    // 2 and 3. Through the API server, one backend at a time.
    const p50 = {} as Record<Backend, number>, p99 = {} as Record<Backend, number>, rate = {} as Record<Backend, number>;
    const w50 = {} as Record<Backend, number>, w99 = {} as Record<Backend, number>;
    for (const b of BACKENDS) {
      const { child, ready } = await startServer(b, etcd);
      const c = new Client(ready);
      try {
        for (const ns of ['bench', 'fanout']) {
          const r = await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
          if (r.status !== 201) throw new Error(`create namespace ${ns} on ${b}: HTTP ${r.status}`);
        }
        // Warm up connections and code paths.
        for (let i = 0; i < 20; i++) await c.request('POST', '/api/v1/namespaces/bench/configmaps', configMap(`warm-${i}`));
        const cr = await createsAtRate(c, 'bench', CREATE_RATE, CREATE_SECONDS, 'c');
        const sorted = cr.latenciesMs.sort((x, y) => x - y);
        p50[b] = percentile(sorted, 50); p99[b] = percentile(sorted, 99); rate[b] = cr.achievedPerS;
        if (cr.errors > 0) notes.push(`${b}: ${cr.errors} of ${CREATE_RATE * CREATE_SECONDS} creates failed`);
        console.log(`api ${b}: creates p50 ${fmt(p50[b])} ms p99 ${fmt(p99[b])} ms at ${cr.achievedPerS.toFixed(0)}/s, ${cr.errors} errors`);
        const wf = await watchFanout(ready, c, 'fanout', WATCHERS, WATCH_WRITES, WATCH_RATE);
        const ws = wf.latenciesMs.sort((x, y) => x - y);
        w50[b] = percentile(ws, 50); w99[b] = percentile(ws, 99);
        if (wf.received < wf.expected) notes.push(`${b}: watchers received ${wf.received} of ${wf.expected} events`);
        console.log(`api ${b}: watch delivery p50 ${fmt(w50[b])} ms p99 ${fmt(w99[b])} ms (${wf.received}/${wf.expected} events)`);
      } finally {
        c.close();
        await stopServer(child);
      }
    }
    rows.push({ metric: `API create p50 ms at ${CREATE_RATE}/s for ${CREATE_SECONDS} s`, better: 'lower', values: p50 });
    rows.push({ metric: `API create p99 ms at ${CREATE_RATE}/s for ${CREATE_SECONDS} s`, better: 'lower', values: p99 });
    rows.push({ metric: 'API creates/s achieved', better: 'higher', values: rate });
    rows.push({ metric: `watch delivery p50 ms, ${WATCHERS} watchers`, better: 'lower', values: w50 });
    rows.push({ metric: `watch delivery p99 ms, ${WATCHERS} watchers`, better: 'lower', values: w99 });
  } finally {
    await etcd.stop();
    for (const d of tmp) fs.rmSync(d, { recursive: true, force: true });
  }

  const t = table(rows);
  const md = [
    '# API server and store benchmark',
    '',
    `Run ${new Date().toISOString()} on ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, ${etcdVersion()} (one member, data dir on the same filesystem as the FileStore: ${os.tmpdir()}). Took ${((performance.now() - t0) / 1000).toFixed(0)} s; load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (other work on the machine skews the numbers).`,
    '',
    t,
    '',
    '- Store writes: sequential creates of a ~0.6 KB ConfigMap, each awaited; FileStore fdatasyncs its log per write, etcd fsyncs its WAL per commit (same durability); MemoryStore is not durable (a ceiling).',
    `- API creates: open loop at ${CREATE_RATE}/s over HTTPS keep-alive; latency counts from when a request was due, so a stall is not hidden. The API server runs in its own process.`,
    `- Watch delivery: ${WATCHERS} watch connections on one namespace, ${WATCH_WRITES} creates at ${WATCH_RATE}/s; latency from the create request being sent to the ADDED event parsed at each watcher (${WATCHERS * WATCH_WRITES} samples per backend).`,
    ...notes.map((n) => `- Note: ${n}`),
    '',
  ].join('\n');
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, md);
  console.log('\n' + t + `\n\nwritten to ${RESULTS}`);
}

main().catch((e: unknown) => { console.error(e); process.exit(1); });
