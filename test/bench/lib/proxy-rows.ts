// The engine of bench:proxy, shared with bench:security's mTLS vs plaintext rows: start the
// rows (each a way to reach the same upstream), measure them side by side with interleaved
// runs (max throughput closed loop, latency open loop at a fixed rate, CPU of the proxy
// processes from /proc, peak RSS), and summarise each row by the medians of its runs.
import fs from 'node:fs';
import path from 'node:path';
import type { LoadGenerator, LatencyFigures, Target, ThroughputFigures } from './load.js';
import { cpuSeconds, peakRssMb, processTree } from './procstat.js';
import type { ChildHandle } from './processes.js';
import { median } from './stats.js';

export function positiveEnv(name: string, fallback: number, integer: boolean): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!(v > 0) || (integer && !Number.isInteger(v))) throw new Error(`bench: ${name}=${raw} must be a positive ${integer ? 'integer' : 'number'}`);
  return v;
}

export const SCALE = positiveEnv('BENCH_SCALE', 1, false);
export const THREADS = positiveEnv('BENCH_THREADS', 1, true);
export const RUNS = 3;
export const CONNECTIONS = 16;
export const RATE = 1000;
export const THROUGHPUT_MS = 5000 * SCALE;
export const LATENCY_MS = 10_000 * SCALE;
const WARMUP_MS = 1000 * SCALE;

export interface Started {
  target: Target;
  /** Proxy processes measured for CPU and memory (none for direct). */
  proxies: ChildHandle[];
  stop(): Promise<void>;
}

export interface RowSpec {
  name: string;
  what: string;
  /** A Debian binary (nginx, haproxy): the row is skipped, not failed, when it is missing. */
  external?: boolean;
  binary?: string;
  start(upstreamPort: number, dir: string): Promise<Started>;
}

export interface RowResult {
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

export const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
export const ratio = (a: number, b: number | undefined): string => (b && Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}x` : 'n/a');

export interface RowsOutcome {
  results: RowResult[];
  failures: string[];
  skipped: string[];
}

/** Starts every row against the upstream, measures them side by side, stops them; a failed row is reported, not thrown. */
export async function runRows(gen: LoadGenerator, upstreamPort: number, dir: string, specs: RowSpec[]): Promise<RowsOutcome> {
  const out: RowsOutcome = { results: [], failures: [], skipped: [] };
  const live: LiveRow[] = [];
  try {
    // Warms the generator and the upstream (JIT) so the first row is not penalized.
    await gen.maxThroughput({ origin: `http://127.0.0.1:${upstreamPort}`, host: 'bench-upstream' }, CONNECTIONS, 2 * WARMUP_MS);
    for (const spec of specs) {
      if (spec.external && spec.binary === undefined) {
        out.skipped.push(`${spec.name}: not installed (apt-get install nginx-light haproxy is needed)`);
        process.stderr.write(`bench: skipping ${spec.name}: binary not found; apt-get install nginx-light haproxy is needed\n`);
        continue;
      }
      process.stderr.write(`bench: starting ${spec.name}: ${spec.what}\n`);
      try {
        const rowDir = fs.mkdtempSync(path.join(dir, spec.name.replace(/\W+/g, '-') + '-'));
        const started = await spec.start(upstreamPort, rowDir);
        live.push({ spec, started, pids: proxyPids(started), startRssMb: started.proxies.map((p) => peakRssMb(processTree(p.pid))), tput: [], lat: [] });
      } catch (err) {
        out.failures.push(`${spec.name}: ${(err as Error).message}`);
        process.stderr.write(`bench: ROW FAILED ${spec.name}: ${(err as Error).message}\n`);
      }
    }
    process.stderr.write(`bench: measuring ${live.map((r) => r.spec.name).join(', ')} (${RUNS} interleaved runs each)\n`);
    await measureAll(gen, live);
    for (const row of live) {
      if (row.failed) {
        out.failures.push(row.failed);
        process.stderr.write(`bench: ROW FAILED ${row.failed}\n`);
      } else {
        out.results.push(summarize(row));
      }
    }
  } finally {
    for (const row of live) await row.started.stop().catch(() => undefined);
  }
  return out;
}
