// The proxy benchmark (issue 5, section 8): on this machine, all on 127.0.0.1, it measures
// side by side the same 1 KB keep-alive upstream reached
//   direct, through one Trellis sidecar, through two chained Trellis sidecars (client and
//   server, plaintext), through nginx and through HAProxy (Debian's, one event loop each).
// Per row: max throughput (closed loop, 16 connections, 5 s); latency p50/p90/p99 at a fixed
// 1000 rps over 16 connections (open loop, 10 s, from each request's intended send time);
// CPU seconds per 1000 requests of the proxy process(es) from /proc; peak RSS (VmHWM).
// Each figure is the median of 3 runs. Prints a table and writes test/bench/results/proxy.md.
// Env: BENCH_SCALE (multiplies durations, e.g. 0.2 for a quick try), BENCH_THREADS (load
// generator threads, default 1), BENCH_ROWS (comma list of row names to run),
// BENCH_PROXY_NODE_ARGS (extra node flags for the sidecars, e.g. --cpu-prof). See README.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LoadGenerator, type LatencyFigures, type Target, type ThroughputFigures } from './lib/load.js';
import { cpuSeconds, peakRssMb, processTree } from './lib/procstat.js';
import { forkNode, stopAllChildren, type ChildHandle } from './lib/processes.js';
import { startHaproxy, startNginx } from './lib/reverse-proxies.js';
import { startOneSidecar, startSidecarChain } from './lib/trellis.js';
import { freePort } from '../proxy/fixtures.js';
import { median } from './lib/stats.js';

function positiveEnv(name: string, fallback: number, integer: boolean): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!(v > 0) || (integer && !Number.isInteger(v))) throw new Error(`bench: ${name}=${raw} must be a positive ${integer ? 'integer' : 'number'}`);
  return v;
}

const SCALE = positiveEnv('BENCH_SCALE', 1, false);
const THREADS = positiveEnv('BENCH_THREADS', 1, true);
const RUNS = 3;
const CONNECTIONS = 16;
const RATE = 1000;
const THROUGHPUT_MS = 5000 * SCALE;
const LATENCY_MS = 10_000 * SCALE;
const WARMUP_MS = 1000 * SCALE;

interface Started {
  target: Target;
  /** Proxy processes measured for CPU and memory (none for direct). */
  proxies: ChildHandle[];
  stop(): Promise<void>;
}

interface RowSpec {
  name: string;
  what: string;
  /** A Debian binary (nginx, haproxy): the row is skipped, not failed, when it is missing. */
  external?: boolean;
  binary?: string;
  start(upstreamPort: number, dir: string): Promise<Started>;
}

interface RowResult {
  name: string;
  proxies: number;
  maxRps: number;
  p50: number;
  p90: number;
  p99: number;
  achievedRps: number;
  cpuPer1kAtRate: number;
  cpuPer1kAtMax: number;
  rssMb: number[];
  /** Peak RSS once configured, before any load (startup and config cost alone). */
  startRssMb: number[];
  errors: number;
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const file = path.join(dir, cmd);
    if (fs.existsSync(file)) return file;
  }
  return undefined;
}

const NGINX = which('nginx');
const HAPROXY = which('haproxy');

const ROWS: RowSpec[] = [
  { name: 'direct', what: 'load generator -> upstream (no proxy)', start: async (port) => ({ target: { origin: `http://127.0.0.1:${port}`, host: 'bench-upstream' }, proxies: [], stop: async () => undefined }) },
  { name: 'trellis x1', what: 'one Trellis sidecar (outbound: virtualOutbound -> RDS route -> EDS cluster)', start: (port) => startOneSidecar(port) },
  { name: 'trellis x2', what: 'two Trellis sidecars chained (client outbound -> server inbound -> upstream), plaintext', start: (port) => startSidecarChain(port) },
  {
    name: 'nginx', what: 'nginx (1 worker), keep-alive to client and upstream', external: true, binary: NGINX,
    start: async (port, dir) => { const listen = await freePort(); return reverseProxy(await startNginx(NGINX!, dir, listen, port), listen); },
  },
  {
    name: 'haproxy', what: 'HAProxy (nbthread 1), keep-alive, http-reuse always', external: true, binary: HAPROXY,
    start: async (port, dir) => { const listen = await freePort(); return reverseProxy(await startHaproxy(HAPROXY!, dir, listen, port), listen); },
  },
];

function reverseProxy(h: ChildHandle, listenPort: number): Started {
  return { target: { origin: `http://127.0.0.1:${listenPort}`, host: 'bench-upstream' }, proxies: [h], stop: () => h.stop() };
}

function proxyPids(started: Started): number[] {
  return started.proxies.flatMap((p) => processTree(p.pid));
}

interface LiveRow {
  spec: RowSpec;
  started: Started;
  pids: number[];
  startRssMb: number[];
  tput: Array<ThroughputFigures & { cpu: number }>;
  lat: Array<LatencyFigures & { cpu: number }>;
  failed?: string;
}

/** Runs `measure` on a row, charging the CPU its proxies used meanwhile; a dead row is marked failed. */
async function withCpu<T extends ThroughputFigures>(row: LiveRow, measure: () => Promise<T>): Promise<(T & { cpu: number }) | undefined> {
  if (row.failed) return undefined;
  const c0 = cpuSeconds(row.pids);
  const r = await measure();
  const cpu = cpuSeconds(row.pids) - c0;
  if (r.completed === 0) {
    row.failed = `${row.spec.name}: a run completed no request (${r.firstError ?? 'no error recorded'})`;
    return undefined;
  }
  if (r.errors > 0) process.stderr.write(`bench: ${row.spec.name}: ${r.errors} failed requests, first: ${r.firstError}\n`);
  return { ...r, cpu };
}

function summarize(row: LiveRow): RowResult {
  const { tput, lat, started } = row;
  return {
    name: row.spec.name,
    proxies: started.proxies.length,
    maxRps: median(tput.map((r) => r.rps)),
    p50: median(lat.map((r) => r.p50)),
    p90: median(lat.map((r) => r.p90)),
    p99: median(lat.map((r) => r.p99)),
    achievedRps: median(lat.map((r) => r.rps)),
    cpuPer1kAtRate: median(lat.map((r) => (r.cpu * 1000) / r.completed)),
    cpuPer1kAtMax: median(tput.map((r) => (r.cpu * 1000) / r.completed)),
    rssMb: started.proxies.map((p) => peakRssMb(processTree(p.pid))),
    startRssMb: row.startRssMb,
    errors: [...tput, ...lat].reduce((a, r) => a + r.errors, 0),
  };
}

/**
 * All rows run side by side and the 3 runs are interleaved (run 1 of every row, then run 2...),
 * so a burst of background load on a shared machine spreads over the rows instead of
 * landing on one. Idle proxies cost nothing measurable meanwhile.
 */
async function measureAll(gen: LoadGenerator, rows: LiveRow[]): Promise<void> {
  for (const row of rows) await withCpu(row, () => gen.maxThroughput(row.started.target, CONNECTIONS, WARMUP_MS));
  for (let i = 0; i < RUNS; i++) {
    for (const row of rows) {
      const r = await withCpu(row, () => gen.maxThroughput(row.started.target, CONNECTIONS, THROUGHPUT_MS));
      if (r) row.tput.push(r);
    }
  }
  for (let i = 0; i < RUNS; i++) {
    for (const row of rows) {
      const r = await withCpu(row, () => gen.fixedRate(row.started.target, CONNECTIONS, RATE, LATENCY_MS));
      if (r) row.lat.push(r);
    }
  }
  for (const row of rows) {
    if (!row.failed) process.stderr.write(`bench: ${row.spec.name}: ${f(median(row.tput.map((r) => r.rps)), 0)} rps max, p90 ${f(median(row.lat.map((r) => r.p90)), 3)} ms at ${RATE} rps\n`);
  }
}

/** A failure message short enough for a table footnote (child stderr can be long). */
function firstLines(s: string): string {
  return s.replace(/\s+/g, ' ').slice(0, 400);
}

function machine(): string {
  const model = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  let kernel = os.release();
  try { kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(); } catch { /* os.release() is enough */ }
  return `${os.availableParallelism()} vCPU (nproc), ${model}, Linux ${kernel}, Node ${process.version}`;
}

const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const ratio = (a: number, b: number | undefined): string => (b && Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}x` : 'n/a');

function table(results: RowResult[]): string {
  const direct = results.find((r) => r.name === 'direct');
  const nginx = results.find((r) => r.name === 'nginx');
  const lines = [
    '| row | max rps | vs direct | vs nginx | p50 ms | p90 ms | p99 ms | p90 over direct ms | p90 vs nginx | achieved rps | CPU s / 1000 req @1000 rps, all proxies of the row (= vCPU per 1000 rps) | CPU s / 1000 req @max | peak RSS MB per proxy | RSS MB before load | failed req |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const cpu = r.proxies ? f(r.cpuPer1kAtRate, 3) + (r.proxies > 1 ? ` (${f(r.cpuPer1kAtRate / r.proxies, 3)} per proxy)` : '') : '-';
    const cpuMax = r.proxies ? f(r.cpuPer1kAtMax, 3) : '-';
    const rss = r.proxies ? r.rssMb.map((m) => f(m, 1)).join(' + ') : '-';
    const startRss = r.proxies ? r.startRssMb.map((m) => f(m, 1)).join(' + ') : '-';
    lines.push(`| ${r.name} | ${f(r.maxRps, 0)} | ${ratio(r.maxRps, direct?.maxRps)} | ${ratio(r.maxRps, nginx?.maxRps)} | ${f(r.p50, 3)} | ${f(r.p90, 3)} | ${f(r.p99, 3)} | ${direct ? f(r.p90 - direct.p90, 3) : 'n/a'} | ${ratio(r.p90, nginx?.p90)} | ${f(r.achievedRps, 0)} | ${cpu} | ${cpuMax} | ${rss} | ${startRss} | ${r.errors} |`);
  }
  return lines.join('\n');
}

function targets(results: RowResult[]): string {
  const direct = results.find((r) => r.name === 'direct');
  const two = results.find((r) => r.name === 'trellis x2');
  const one = results.find((r) => r.name === 'trellis x1');
  const nginx = results.find((r) => r.name === 'nginx');
  const mark = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  const out: string[] = [];
  if (direct && two) {
    const added = two.p90 - direct.p90;
    out.push(`- two sidecars add <= 0.3 ms at p90 over direct: ${f(added, 3)} ms -> ${mark(added <= 0.3)}`);
  }
  const trellis = [one, two].filter((r): r is RowResult => r !== undefined);
  if (trellis.length) {
    const vcpu = Math.max(...trellis.map((r) => r.cpuPer1kAtRate / r.proxies));
    const rss = Math.max(...trellis.flatMap((r) => r.rssMb));
    out.push(`- <= 0.2 vCPU per 1000 rps per proxy: ${f(vcpu, 3)} vCPU (worst Trellis row, per proxy) -> ${mark(vcpu <= 0.2)}`);
    out.push(`- <= 60 MB RSS per proxy: ${f(rss, 1)} MB peak (largest Trellis proxy) -> ${mark(rss <= 60)}`);
  }
  if (one && nginx) out.push(`- max throughput per proxy >= nginx: ${f(one.maxRps, 0)} vs ${f(nginx.maxRps, 0)} rps (${ratio(one.maxRps, nginx.maxRps)}) -> ${mark(one.maxRps >= nginx.maxRps)}`);
  return out.join('\n');
}

async function main(): Promise<number> {
  const t0 = Date.now();
  const only = process.env.BENCH_ROWS?.split(',').map((s) => s.trim());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-'));
  const gen = new LoadGenerator(THREADS);
  const upstreamFile = fileURLToPath(new URL('./lib/upstream-process.js', import.meta.url));
  const { handle: upstream, message } = await forkNode<{ port: number }>('upstream', upstreamFile);
  const results: RowResult[] = [];
  const failures: string[] = [];
  const skipped: string[] = [];
  const live: LiveRow[] = [];
  const load0 = os.loadavg()[0];
  try {
    // Warms the generator and the upstream (JIT) so the first row is not penalized.
    await gen.maxThroughput({ origin: `http://127.0.0.1:${message.port}`, host: 'bench-upstream' }, CONNECTIONS, 2 * WARMUP_MS);
    for (const spec of ROWS) {
      if (only && !only.includes(spec.name)) continue;
      if (spec.external && spec.binary === undefined) {
        skipped.push(`${spec.name}: not installed (apt-get install nginx-light haproxy is needed)`);
        process.stderr.write(`bench: skipping ${spec.name}: binary not found; apt-get install nginx-light haproxy is needed\n`);
        continue;
      }
      process.stderr.write(`bench: starting ${spec.name}: ${spec.what}\n`);
      try {
        const rowDir = fs.mkdtempSync(path.join(dir, spec.name.replace(/\W+/g, '-') + '-'));
        const started = await spec.start(message.port, rowDir);
        live.push({ spec, started, pids: proxyPids(started), startRssMb: started.proxies.map((p) => peakRssMb(processTree(p.pid))), tput: [], lat: [] });
      } catch (err) {
        failures.push(`${spec.name}: ${(err as Error).message}`);
        process.stderr.write(`bench: ROW FAILED ${spec.name}: ${(err as Error).message}\n`);
      }
    }
    process.stderr.write(`bench: measuring ${live.map((r) => r.spec.name).join(', ')} (${RUNS} interleaved runs each)\n`);
    await measureAll(gen, live);
    for (const row of live) {
      if (row.failed) {
        failures.push(row.failed);
        process.stderr.write(`bench: ROW FAILED ${row.failed}\n`);
      } else {
        results.push(summarize(row));
      }
    }
  } finally {
    for (const row of live) await row.started.stop().catch(() => undefined);
    await gen.close();
    await upstream.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const load1 = os.loadavg()[0];

  const report = [
    '# Proxy benchmark',
    '',
    `Run ${new Date().toISOString()} on ${machine()}; took ${Math.round((Date.now() - t0) / 1000)} s.`,
    `Load generator: ${gen.describe()}, the same for every row. Upstream: a Node HTTP/1.1 server (own process), GET / -> 200 with a 1024-byte body, keep-alive.`,
    `Max throughput: closed loop, ${CONNECTIONS} connections, ${THROUGHPUT_MS / 1000} s. Latency: open loop at ${RATE} rps over ${CONNECTIONS} connections, ${LATENCY_MS / 1000} s, measured from each request's intended send time.`,
    `1-minute load average ${load0.toFixed(1)} at the start, ${load1.toFixed(1)} at the end${Math.max(load0, load1) > os.availableParallelism() / 2 ? ' (the machine was busy with other work: absolute figures are noisy, ratios between rows less so)' : ''}.`,
    `Every figure is the median of ${RUNS} interleaved runs. CPU and RSS are of the proxy process(es) only (all threads, whole process tree), from /proc. Everything (generator, proxies, upstream) shares the same ${os.availableParallelism()} vCPUs.`,
    '',
    table(results),
    '',
    'Issue 5 targets:',
    '',
    targets(results),
    ...(skipped.length ? ['', 'Skipped rows:', '', ...skipped.map((s) => `- ${s}`)] : []),
    ...(failures.length ? ['', 'FAILED rows:', '', ...failures.map((s) => `- ${firstLines(s)}`)] : []),
    '',
  ].join('\n');
  process.stdout.write('\n' + report);
  const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  fs.writeFileSync(path.join(resultsDir, 'proxy.md'), report);
  process.stderr.write(`bench: wrote ${path.join(resultsDir, 'proxy.md')}\n`);
  if (failures.length) {
    process.stderr.write(`bench: FAILED: ${failures.length} row(s) did not run:\n${failures.map((s) => `  ${s}`).join('\n')}\n`);
    return 1;
  }
  return 0;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`bench: ${sig}, stopping the proxies and the upstream\n`);
    void stopAllChildren().finally(() => process.exit(130));
  });
}

main().then((code) => process.exit(code), (err: Error) => {
  process.stderr.write(`bench: FAILED: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
