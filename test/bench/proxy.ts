// The proxy benchmark (issue 5, section 8): on this machine, all on 127.0.0.1, it measures
// side by side the same 1 KB keep-alive upstream reached
//   direct, through one Trellis sidecar, through two chained Trellis sidecars (client and
//   server, plaintext and automatic mTLS), through nginx and through HAProxy (Debian's, one
//   event loop each).
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
import { LoadGenerator } from './lib/load.js';
import { forkNode, stopAllChildren, type ChildHandle } from './lib/processes.js';
import { startHaproxy, startNginx } from './lib/reverse-proxies.js';
import { startOneSidecar, TRELLIS_X2, TRELLIS_X2_MTLS } from './lib/trellis.js';
import { freePort } from '../proxy/fixtures.js';
import {
  CONNECTIONS, f, LATENCY_MS, RATE, ratio, RUNS, runRows, THREADS, THROUGHPUT_MS,
  type RowResult, type RowSpec, type RowsOutcome, type Started,
} from './lib/proxy-rows.js';

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
  TRELLIS_X2,
  TRELLIS_X2_MTLS,
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
  const twoMtls = results.find((r) => r.name === 'trellis x2 mTLS');
  const nginx = results.find((r) => r.name === 'nginx');
  const mark = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  const out: string[] = [];
  if (direct && two) {
    const added = two.p90 - direct.p90;
    out.push(`- two sidecars add <= 0.3 ms at p90 over direct: ${f(added, 3)} ms -> ${mark(added <= 0.3)}`);
  }
  const trellis = [one, two, twoMtls].filter((r): r is RowResult => r !== undefined);
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
  const load0 = os.loadavg()[0];
  let outcome: RowsOutcome;
  try {
    outcome = await runRows(gen, message.port, dir, ROWS.filter((spec) => !only || only.includes(spec.name)));
  } finally {
    await gen.close();
    await upstream.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const { results, failures, skipped } = outcome;
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
