// The cluster benchmark's markdown: date and machine, the startup/scheduler table next to the
// issue's targets, the memory table, and how each figure was measured.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { pct, type RoundResult } from './cluster-pods.js';

export interface MemoryRow { what: string; rss: number; hwm: number; target?: number }

/** CPU pressure (PSI "some" avg60): the share of time runnable tasks waited for a CPU. */
export function cpuPressure(): string {
  try { return `${/avg60=([\d.]+)/.exec(fs.readFileSync('/proc/pressure/cpu', 'utf8'))?.[1] ?? '?'}%`; } catch { return 'n/a'; }
}

export interface ReportInput {
  pressureStart: string;
  pressureEnd: string;
  date: string;
  tookS: number;
  loadStart: number[];
  loadEnd: number[];
  startupMs: number;
  rounds: RoundResult[];
  memory: MemoryRow[];
  notes: string[];
  meshBig: number;
  upExit: number | null;
  leftovers: string[];
  failed: boolean;
}

const TARGET_P99_MS = 2000;

function machine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  let kernel = os.release();
  try { kernel = execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim(); } catch { /* os.release() */ }
  let mem = `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM`;
  try { if (fs.existsSync('/sys/fs/cgroup/cpu.max')) mem += `, cgroup cpu.max ${fs.readFileSync('/sys/fs/cgroup/cpu.max', 'utf8').trim()}`; } catch { /* none */ }
  return `${os.cpus().length} CPUs (${cpu}), ${mem}, ${kernel}, Node ${process.version}, host ${os.hostname()}`;
}

const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : 'n/a');
const mb = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : '');
const load = (l: number[]): string => l.map((x) => x.toFixed(1)).join(' ');

export function renderReport(r: ReportInput): string {
  const out: string[] = [];
  out.push('# Embedded cluster benchmark', '');
  out.push(`Run ${r.date} on ${machine()}. Took ${r.tookS.toFixed(0)} s (\`trellis up\` to READY: ${(r.startupMs / 1000).toFixed(1)} s). Load average at the start ${load(r.loadStart)}, at the end ${load(r.loadEnd)}; CPU pressure (PSI some avg60: time runnable tasks waited for a CPU) ${r.pressureStart} at the start, ${r.pressureEnd} at the end (other work on the machine skews the numbers).`);
  if (r.failed) out.push('', '**The run FAILED part-way; the rows below are what was measured before the failure.**');
  out.push('', '## Pod startup (create -> Ready) and scheduling', '');
  out.push('| round | Ready | p50 ms | p99 ms | target p99 | sched p50 ms | sched p99 ms | binds/s | creates/s | wall s | median phases ms: admit / schedule / start / probe | deletion s (pods left) |');
  out.push('|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---|');
  for (const x of r.rounds) {
    const p99 = pct(x.startup, 99);
    const withSidecar = x.label.includes('with sidecar');
    const verdict = withSidecar ? `< 2000 (${p99 < TARGET_P99_MS ? 'met' : 'missed'})` : `< 5000 k8s SLO (${p99 < 5000 ? 'met' : 'missed'})`;
    const ph = x.phases;
    // Pods not Ready by the cap count with the cap: such a percentile is a lower bound.
    const censored = (p: number): string => `${x.ready < Math.ceil((p / 100) * x.pods) ? '>= ' : ''}${ms(pct(x.startup, p))}`;
    out.push(`| ${x.label} | ${x.ready}/${x.pods}${x.timedOut ? ' (cap reached)' : ''} | ${censored(50)} | ${censored(99)} | ${verdict} | ${ms(pct(x.scheduling, 50))} | ${ms(pct(x.scheduling, 99))} | ${x.bindPerSecond.toFixed(1)} | ${x.createPerSecond.toFixed(1)} | ${(x.wallMs / 1000).toFixed(1)} | ${ms(ph.admit)} / ${ms(ph.schedule)} / ${ms(ph.start)} / ${ms(ph.ready)} | ${(x.deleteMs / 1000).toFixed(1)}${x.deleteLeft > 0 ? ` (${x.deleteLeft} left)` : x.deleteLeft < 0 ? ' (could not list)' : ''} |`);
  }
  out.push('', '## Memory (MB) with the split sample running', '');
  out.push('| process | VmRSS | VmHWM (peak) | target |', '|---|---:|---:|---|');
  for (const m of r.memory) {
    out.push(`| ${m.what} | ${mb(m.rss)} | ${mb(m.hwm)} | ${m.target ? `< ${m.target} RSS (${m.rss < m.target ? 'met' : 'missed'})` : ''} |`);
  }
  out.push('', '## How it was measured', '');
  out.push('- The cluster is a real `node dist/cli/trellis.js up --no-sample` (prefix `tbc`, pods 10.246.0.0/16, services 10.98.0.0/16, API on 127.0.0.1:17443, temp data dir): one node, the mesh installed from install/, the injector webhook live. Stopped with SIGINT by PID, then `trellis down --purge --name tbc` and a check for leftovers.');
  out.push('- Each round creates N bare pods at once (16 creates in flight): one container `node -e` HTTP server (command given, no image catalog lookup) with an httpGet readiness probe, `periodSeconds: 1` (the Kubernetes minimum). "with sidecar" rounds run in a namespace labelled `istio-injection=enabled`, so every pod also gets `istio-init` (iptables) and the `istio-proxy` native sidecar through the admission webhook.');
  out.push('- Latency is measured by a watch opened before the first create, in the bench\'s clock: from the moment the pod\'s POST is sent to the first watch event showing the Ready condition True. (creationTimestamp and lastTransitionTime have 1 s resolution on the wire.) A pod that never became Ready counts with the round\'s timeout.');
  out.push('- Phases (medians): admit = POST sent -> 201 (API server, store fsync, the injector webhook in sidecar rounds); schedule = created -> seen bound; start = bound -> phase Running (network namespace, veth, IP, init containers, processes); probe = Running -> Ready.');
  out.push('- binds/s = pods bound / (last bind - first create sent), while the round\'s pods were being created; creates/s is the rate the client got its creates accepted (the offered load).');
  out.push('- Memory: VmRSS and VmHWM from /proc/<pid>/status of the `trellis up` process (API server, store, controllers, scheduler, kubelet, DNS and service proxy in one Node process), and of every process in the pilot and injector pods (found with `ip netns pids`). VmHWM of `trellis up` is its peak over the whole run, including the big rounds.');
  out.push('- Each round has a cap (so the bench stays under 6 minutes): a pod not Ready by then counts with the cap, and a percentile that falls on such a pod is shown as `>=` (a lower bound). Scheduling percentiles cover the pods bound before the cap (so they too understate a round that reached it).');
  out.push('- After each round its pods are deleted (grace period 0) and the bench waits (15 s at most, also while the delete requests themselves are slow) until the namespace is empty; pods still present then are listed as "left" (they keep the node busy during the next round, which runs in a fresh namespace).');
  for (const n of r.notes) out.push(`- ${n}`);
  out.push('', `Teardown: \`trellis up\` exited with ${String(r.upExit)}; objects left with prefix tbc: ${r.leftovers.length ? r.leftovers.join('; ') : 'none'}.`);
  const errs = r.rounds.flatMap((x) => x.errors.slice(0, 3).map((e) => `${x.label}: ${e}`));
  if (errs.length) out.push('', 'Errors (first of each round):', ...errs.map((e) => `- ${e}`));
  return `${out.join('\n')}\n`;
}
