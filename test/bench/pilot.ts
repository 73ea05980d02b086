// Pilot benchmark (issue 6, section 7): N simulated sidecars over the real ADS protocol
// against pilot's XdsServer for a mesh of M services, state of the world. For each (M, N):
//   1. pilot (pilot-server.ts) starts alone in a child process on 127.0.0.1;
//   2. N proxies (pilot-load.ts, 1 or 2 load processes) connect at once, subscribe CDS+LDS,
//      then EDS+RDS, ACK everything: time until the last one has ACKed all four types;
//   3. one VirtualService's weights change (80/20 -> 50/50) and one service gains an
//      endpoint, in one snapshot: time from the change's arrival in pilot until each proxy
//      has ACKed the new EDS and RDS (every proxy sees every service, so all are affected),
//      pilot CPU seconds for that push, and pilot's RSS.
// Prints a table next to the issue's targets and writes test/bench/results/pilot.md.
// Run: node dist/test/bench/pilot.js   (loopback only; keeps under ~6 minutes by skipping
// the combinations it projects would not fit, and says so)
// Knobs: BENCH_PILOT_M=100,1000  BENCH_PILOT_N=100,500,1000,2000  BENCH_PILOT_BUDGET_S=330
//        BENCH_PILOT_SYNC_TIMEOUT_MS=120000  BENCH_PILOT_CONVERGE_TIMEOUT_MS=120000
//        BENCH_PILOT_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' (pilot's node flags)
import { fork, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from './lib/procstat.js';
import { percentile } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.resolve(HERE, '../../../test/bench/results/pilot.md');
const list = (v: string | undefined, d: number[]): number[] => (v ? v.split(',').map(Number) : d);
const MS = list(process.env.BENCH_PILOT_M, [100, 1000]);
const NS = list(process.env.BENCH_PILOT_N, [100, 500, 1000, 2000]);
const BUDGET_S = Number(process.env.BENCH_PILOT_BUDGET_S ?? 330);
const PROXIES_PER_LOAD = 1000;
// Extra node flags for the pilot process, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
const NODE_ARGS = (process.env.BENCH_PILOT_NODE_ARGS ?? '').split(' ').filter(Boolean);
const TARGET_RSS_MB = 500;
const TARGET_P99_MS = 1000;

type Mode = 'sotw' | 'delta';

interface Row {
  m: number; n: number; mode: Mode; loads: number;
  syncS: number; syncCpuS: number; synced: number; errors: number;
  rssMb: number; hwmMb: number;
  buildMs: number; updateMs: number; p50: number; p99: number; max: number; converged: number; pushCpuS: number;
  extraTypes: number; check: string[]; wallS: number;
}

type Msg = Record<string, unknown> & { kind?: string };

class Proc {
  readonly proc: ChildProcess;
  private readonly inbox: Msg[] = [];
  private waiters: { kind: string; resolve: (m: Msg) => void }[] = [];
  private stderr = '';
  constructor(readonly name: string, file: string, args: string[], execArgv: string[] = []) {
    this.proc = fork(path.join(HERE, file), args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv });
    this.proc.stderr?.on('data', (c: Buffer) => { this.stderr = (this.stderr + c.toString()).slice(-2000); });
    this.proc.on('message', (m: Msg) => {
      const i = this.waiters.findIndex((w) => w.kind === m.kind || (w.kind === 'port' && 'port' in m));
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m); else this.inbox.push(m);
    });
  }
  get pid(): number { return this.proc.pid!; }
  send(m: object): void { this.proc.send(m); }
  wait(kind: string, timeoutMs: number): Promise<Msg> {
    const i = this.inbox.findIndex((m) => m.kind === kind || (kind === 'port' && 'port' in m));
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: no '${kind}' within ${timeoutMs} ms; stderr: ${this.stderr.trim()}`)), timeoutMs);
      const exit = (code: number | null) => { clearTimeout(t); reject(new Error(`${this.name} exited with ${code} waiting for '${kind}'; stderr: ${this.stderr.trim()}`)); };
      this.proc.once('exit', exit);
      this.waiters.push({ kind, resolve: (m) => { clearTimeout(t); this.proc.off('exit', exit); resolve(m); } });
    });
  }
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    try { process.kill(this.pid, 'SIGTERM'); } catch { return; }
    const t = setTimeout(() => { try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ } }, 3000);
    await gone;
    clearTimeout(t);
  }
}

function statusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let deltaLine = 'delta: not probed';
let deltaServed = false;

async function runOne(m: number, n: number, mode: Mode, probeDelta: boolean): Promise<Row> {
  const wall0 = Date.now();
  const pilot = new Proc(`pilot(M=${m})`, 'pilot-server.js', [String(m)], ['--max-old-space-size=4096', ...NODE_ARGS]);
  const loads: Proc[] = [];
  try {
    const { port } = await pilot.wait('port', 60_000) as { port: number };
    const count = Math.ceil(n / PROXIES_PER_LOAD);
    for (let i = 0; i < count; i++) {
      const from = Math.floor((n * i) / count), to = Math.floor((n * (i + 1)) / count);
      loads.push(new Proc(`load${i}`, 'pilot-load.js', [String(port), String(m), String(from), String(to), mode]));
    }
    await Promise.all(loads.map((l) => l.wait('ready', 30_000)));
    if (probeDelta) {
      loads[0].send({ cmd: 'delta' });
      const d = await loads[0].wait('delta', 10_000) as { served: boolean; detail: string };
      deltaServed = d.served;
      deltaLine = d.served ? `delta: DeltaAggregatedResources answers (${d.detail}); measured in the delta rows` : `delta: not served yet (${d.detail})`;
      console.log(deltaLine);
    }

    // Initial sync: all N at once (a restart storm).
    const cpu0 = cpuSeconds([pilot.pid]);
    const t0 = Date.now();
    for (const l of loads) l.send({ cmd: 'connect' });
    const synced = await Promise.all(loads.map((l) => l.wait('synced', 180_000))) as unknown as { at: (number | null)[]; errorCount: number; errors: string[] }[];
    const syncAt = synced.flatMap((s) => s.at).filter((x): x is number => x !== null);
    const errors = synced.reduce((k, s) => k + s.errorCount, 0);
    if (errors) console.log(`  M=${m} N=${n}: ${errors} streams failed, e.g. ${synced.flatMap((s) => s.errors)[0]}`);
    const syncCpuS = cpuSeconds([pilot.pid]) - cpu0;
    const syncS = (Math.max(...syncAt) - t0) / 1000;
    await sleep(1500); // late ACKs drained, GC settled
    const rssMb = statusMb(pilot.pid, 'VmRSS');

    // The change.
    for (const l of loads) l.send({ cmd: 'mark' });
    await Promise.all(loads.map((l) => l.wait('marked', 10_000)));
    const cpu1 = cpuSeconds([pilot.pid]);
    pilot.send({ cmd: 'change' });
    const changed = await pilot.wait('changed', 120_000) as { t0: number; buildMs: number; updateMs: number };
    const conv = await Promise.all(loads.map((l) => l.wait('converged', 180_000))) as unknown as { at: (number | null)[]; extraTypes: number; check: string[]; errorCount: number; errors: string[] }[];
    const lost = conv.reduce((k, c) => k + c.errorCount, 0) - errors;
    if (lost > 0) console.log(`  M=${m} N=${n}: ${lost} streams failed during the push, e.g. ${conv.flatMap((c) => c.errors)[0]}`);
    const pushCpuS = cpuSeconds([pilot.pid]) - cpu1;
    const lat = conv.flatMap((c) => c.at).filter((x): x is number => x !== null).map((a) => a - changed.t0).sort((a, b) => a - b);
    const hwmMb = statusMb(pilot.pid, 'VmHWM');
    return {
      m, n, mode, loads: loads.length, syncS, syncCpuS, synced: syncAt.length, errors: Math.max(errors, conv.reduce((k, c) => k + c.errorCount, 0)), rssMb, hwmMb,
      buildMs: changed.buildMs, updateMs: changed.updateMs,
      p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1] ?? NaN, converged: lat.length, pushCpuS,
      extraTypes: conv.reduce((k, c) => k + c.extraTypes, 0), check: conv[0].check, wallS: (Date.now() - wall0) / 1000,
    };
  } finally {
    for (const l of loads) { try { l.send({ cmd: 'close' }); } catch { /* gone */ } }
    await Promise.all(loads.map((l) => l.stop()));
    await pilot.stop();
  }
}

const f = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : '-');

function table(rows: Row[]): string {
  const head = '| M services | N proxies | protocol | streams failed | all synced s | pilot CPU s (sync) | pilot RSS MB synced | pilot peak RSS MB | push: snapshot ms | push: generate+write ms | converged | p50 ms | p99 ms | max ms | pilot CPU s / push |';
  const sep = '|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  return [head, sep, ...rows.map((r) => `| ${r.m} | ${r.n} | ${r.mode} | ${r.errors} | ${f(r.syncS, 1)} | ${f(r.syncCpuS, 1)} | ${f(r.rssMb)} | ${f(r.hwmMb)} | ${r.buildMs} | ${r.updateMs} | ${r.converged}/${r.n} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} | ${f(r.pushCpuS, 2)} |`)].join('\n');
}

function machine(): string {
  const cpu = os.cpus()[0]?.model?.trim() ?? 'unknown CPU';
  let kernel = os.release();
  try { kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(); } catch { /* os.release() */ }
  return `${os.cpus().length} CPUs (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GB RAM, Linux ${kernel}, Node ${process.version}`;
}

async function main(): Promise<void> {
  const start = Date.now();
  const load0 = os.loadavg().map((x) => x.toFixed(1)).join(' ');
  const rows: Row[] = [];
  const skipped: string[] = [];
  const failed: string[] = [];
  let probed = false;
  // Cheapest first, so the time budget drops the largest combinations.
  const combos = MS.flatMap((m) => NS.map((n) => ({ m, n }))).sort((a, b) => a.m * a.n - b.m * b.n || a.m - b.m);
  const FIXED_S = 8; // start of pilot and load processes, settling
  for (const { m, n } of combos) {
    for (const mode of ['sotw', 'delta'] as const) {
      if (mode === 'delta' && !deltaServed) continue;
      const left = BUDGET_S - (Date.now() - start) / 1000;
      // Cost grows about with M x N: project from the largest run so far of this protocol.
      const prev = rows.filter((r) => r.mode === mode || mode === 'sotw').sort((a, b) => b.m * b.n - a.m * a.n)[0];
      const projected = prev ? FIXED_S + Math.max(0, prev.wallS - FIXED_S) * (m * n) / (prev.m * prev.n) : 30;
      if (projected > left) {
        const why = `M=${m} N=${n} ${mode}: projected ${f(projected)} s (from M=${prev?.m} N=${prev?.n}: ${f(prev?.wallS ?? NaN)} s), ${f(Math.max(0, left))} s of the ${BUDGET_S} s budget left`;
        skipped.push(why);
        console.log(`skip ${why}`);
        continue;
      }
      console.log(`run M=${m} N=${n} ${mode} ...`);
      try {
        const row = await runOne(m, n, mode, !probed);
        probed = true;
        rows.push(row);
        console.log(`  synced ${row.synced}/${n} in ${f(row.syncS, 1)} s; change converged ${row.converged}/${n} p50 ${f(row.p50)} ms p99 ${f(row.p99)} ms; push CPU ${f(row.pushCpuS, 2)} s; RSS ${f(row.rssMb)} MB (peak ${f(row.hwmMb)}); checked: ${row.check.join('; ')}; took ${f(row.wallS)} s`);
      } catch (e) {
        failed.push(`M=${m} N=${n} ${mode}: ${(e as Error).message}`);
        console.log(`  FAILED: ${(e as Error).message}`);
      }
    }
  }
  const took = (Date.now() - start) / 1000;
  const big = rows.find((r) => r.m === 1000 && r.n === 2000 && r.mode === 'sotw');
  const targets = [
    `- Target: 1000 services and 2000 proxies held in at most ${TARGET_RSS_MB} MB: ${big ? `${f(big.hwmMb)} MB peak (${big.hwmMb <= TARGET_RSS_MB ? 'met' : 'NOT met'})` : 'not measured in this run (combination skipped or failed)'}.`,
    `- Target: every proxy converged within ${TARGET_P99_MS} ms at p99 after a change: ${rows.map((r) => `M=${r.m}/N=${r.n} ${r.mode} ${f(r.p99)} ms${r.converged < r.n ? ` (only ${r.converged}/${r.n} converged)` : ''} ${r.p99 <= TARGET_P99_MS && r.converged === r.n ? 'met' : 'NOT met'}`).join('; ') || 'nothing measured'}.`,
  ];
  const md = [
    '# Pilot xDS benchmark', '',
    `Run ${new Date().toISOString()} on ${machine()}. Took ${f(took)} s; load average at the start ${load0}, at the end ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} (other work on the machine skews the numbers).`, '',
    'Protocol sotw: state of the world (StreamAggregatedResources); delta: DeltaAggregatedResources (only changed resources are sent; the delta client subscribes EDS/RDS by name as clusters and listeners arrive). ' + deltaLine + '.', '',
    table(rows), '',
    ...targets, '',
    ...(skipped.length ? ['Skipped to stay within the time budget:', ...skipped.map((s) => `- ${s}`), ''] : []),
    ...(failed.length ? ['FAILED:', ...failed.map((s) => `- ${s}`), ''] : []),
    '- Mesh: M services over 10 namespaces, each a ClusterIP service with one HTTP port (8080) and Endpoints with 2 pods (v1, v2); every 10th service has a DestinationRule (subsets v1/v2) and a VirtualService (80/20). Proxy k is the sidecar of pod k mod 2M (so with N > 2M several proxies share a pod identity).',
    '- Proxies: real gRPC ADS streams (@grpc/grpc-js, one HTTP/2 connection each) from 1 load process per 1000 proxies, all started at once; each subscribes CDS and LDS wildcard, then EDS and RDS by name, and ACKs every response. "all synced" is until the last proxy has ACKed all four types.',
    '- Change: VirtualService of svc-0 80/20 -> 50/50 and a third endpoint for svc-1, in one snapshot. Latency runs from the change arriving in pilot (before the snapshot is built; the informer and the debounce quiet period are not included) until each proxy has ACKed both the new RDS and the new EDS; every proxy sees every service, so all N are affected. "snapshot" is PushContext.build, "generate+write" is XdsServer.update until its push queue drained (bounded concurrency, each push waits for its writes to flush). The first proxy of each load process decodes what it got and checks the change: ' + (rows[0]?.check.join('; ') ?? '-') + '.',
    `- Responses of other types after the change (should be 0): ${rows.map((r) => `M=${r.m}/N=${r.n} ${r.mode}: ${r.extraTypes}`).join(', ')}.`,
    '- CPU: utime+stime of the pilot process from /proc/<pid>/stat (10 ms ticks). RSS: VmRSS after sync settled, VmHWM at the end, of the pilot process alone. The load processes share the 2 cores with pilot.',
    '',
  ].join('\n');
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, md);
  console.log('\n' + md);
  console.log(`written to ${RESULTS}`);
  if (failed.length) process.exitCode = 1;
}

await main();
