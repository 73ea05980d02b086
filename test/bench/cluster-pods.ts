// One round of the pod startup benchmark: N bare pods created at once in a namespace, each
// a trivial `node -e` HTTP server with an httpGet readiness probe (command given, so no image
// catalog lookup). A watch opened before the first create timestamps, for every pod, when it
// was first seen bound (spec.nodeName), Running and Ready, in this process's clock; create
// time is when its POST was sent. (creationTimestamp and lastTransitionTime have 1 s
// resolution on the wire, too coarse for a 2 s target.) Then every pod is deleted and the
// round waits until the namespace holds none.
import { KubeClient, R, type Pod, type WatchEvent } from '../../api/kube/index.js';

export interface PodTimes { sent: number; created?: number; bound?: number; running?: number; ready?: number }

export interface RoundResult {
  label: string;
  namespace: string;
  pods: number;
  ready: number;
  /** create sent -> Ready, ms, sorted */
  startup: number[];
  /** create sent -> bound, ms, sorted */
  scheduling: number[];
  /** phase breakdown medians (ms): sent->created (admission incl. webhook), created->bound, bound->Running, Running->Ready */
  phases: { admit: number; schedule: number; start: number; ready: number };
  /** pods bound per second: pods / (last bind - first create sent) */
  bindPerSecond: number;
  /** pods created per second by the client (the offered rate the scheduler saw) */
  createPerSecond: number;
  /** first create sent -> last pod Ready */
  wallMs: number;
  deleteMs: number;
  /** pods still present when the bench stopped waiting for the deletion (-1: could not list) */
  deleteLeft: number;
  timedOut: boolean;
  errors: string[];
}

const SERVER_JS = "require('http').createServer((q,s)=>s.end('ok')).listen(8080)";
const CREATE_CONCURRENCY = 16;

function benchPod(name: string, namespace: string): Pod {
  return {
    metadata: { name, namespace, labels: { app: 'bench-startup' } },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{
        name: 'app',
        image: 'trellis/bench-noop:0', // never looked up: command is given
        command: [process.execPath, '-e', SERVER_JS],
        ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
        // 1 s is Kubernetes' minimum period; the first probe runs right when the container starts.
        readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1, timeoutSeconds: 1 },
      }],
    },
  } as Pod;
}

const sorted = (v: number[]): number[] => [...v].sort((a, b) => a - b);
export function pct(s: number[], p: number): number {
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const med = (v: number[]): number => pct(sorted(v), 50);

function isReady(p: Pod): boolean {
  return !!p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]);
  }));
}

/** Watches pods of a namespace from a resourceVersion, re-watching if the server ends the stream. */
function watchPods(client: KubeClient, namespace: string, rv: string, onPod: (type: string, p: Pod) => void): { stop(): void } {
  let stopped = false;
  let current: { stop(): void } | undefined;
  let lastRV = rv;
  const loop = async (): Promise<void> => {
    while (!stopped) {
      const w = client.watch<Pod>(R.pods, { namespace, resourceVersion: lastRV }, (ev: WatchEvent<Pod>) => {
        if (ev.object.metadata?.resourceVersion) lastRV = ev.object.metadata.resourceVersion;
        onPod(ev.type, ev.object);
      });
      current = w;
      await w.done.catch(() => new Promise((r) => setTimeout(r, 200)));
    }
  };
  void loop();
  return { stop: () => { stopped = true; current?.stop(); } };
}

export async function runRound(client: KubeClient, label: string, namespace: string, n: number, timeoutMs: number, deleteWaitMs: number): Promise<RoundResult> {
  const times = new Map<string, PodTimes>();
  const errors: string[] = [];
  const names = Array.from({ length: n }, (_, i) => `bench-${i}`);
  const list = await client.list<Pod>(R.pods, { namespace });
  if (list.items.length) throw new Error(`namespace ${namespace} still holds ${list.items.length} pods before round ${label}`);
  let readyCount = 0;
  let allReady: () => void = () => {};
  const allReadyP = new Promise<void>((r) => { allReady = r; });
  const watch = watchPods(client, namespace, list.metadata?.resourceVersion ?? '0', (type, p) => {
    const t = times.get(p.metadata.name ?? '');
    if (!t || type === 'DELETED') return;
    const now = performance.now();
    if (t.bound === undefined && p.spec?.nodeName) t.bound = now;
    if (t.running === undefined && p.status?.phase === 'Running') t.running = now;
    if (t.ready === undefined && isReady(p)) {
      t.ready = now;
      if (++readyCount === n) allReady();
    }
  });
  // Let the watch connect before the first create, so no event is missed between list and watch
  // (the resourceVersion covers it anyway; this only keeps the first timestamps honest).
  await new Promise((r) => setTimeout(r, 300));

  const first = performance.now();
  let lastCreated = first;
  // The round's clock starts at the first create: a slow node cannot stretch the bench.
  let timedOut = false;
  const capped = Promise.race([allReadyP, new Promise<void>((r) => { setTimeout(() => { timedOut = true; r(); }, timeoutMs); })]);
  let notCreated = 0;
  await pool(names, CREATE_CONCURRENCY, async (name) => {
    // Past the cap, the rest is not created: it counts as not Ready (with the cap).
    if (timedOut) { notCreated++; return; }
    const t: PodTimes = { sent: performance.now() };
    times.set(name, t);
    try {
      await client.create(R.pods, benchPod(name, namespace));
      t.created = lastCreated = performance.now();
    } catch (e) {
      errors.push(`create ${namespace}/${name}: ${(e as Error).message}`);
      times.delete(name);
      if (++readyCount === n) allReady(); // a failed create never becomes ready; don't wait for it
    }
  });
  await capped;
  watch.stop();
  const all = [...times.values()];
  if (notCreated) errors.push(`${notCreated} pods were not created: the cap was reached while creating`);
  const last = Math.max(...all.map((t) => t.ready ?? 0));
  const lastBound = Math.max(...all.map((t) => t.bound ?? 0));
  const bound = all.filter((t) => t.bound !== undefined);
  const ready = all.filter((t) => t.ready !== undefined);
  // A pod that never got Ready counts with the round's timeout, so it still weighs on p99.
  const startup = sorted([...all.map((t) => (t.ready ?? first + timeoutMs) - t.sent), ...Array<number>(notCreated).fill(timeoutMs)]);
  const del = await deleteAll(client, namespace, deleteWaitMs);
  const diffs = (a: keyof PodTimes, b: keyof PodTimes): number[] => all.filter((t) => t[a] !== undefined && t[b] !== undefined).map((t) => (t[b] as number) - (t[a] as number));
  return {
    label, namespace, pods: n, ready: ready.length, startup,
    scheduling: sorted(bound.map((t) => (t.bound as number) - t.sent)),
    phases: { admit: med(diffs('sent', 'created')), schedule: med(diffs('created', 'bound')), start: med(diffs('bound', 'running')), ready: med(diffs('running', 'ready')) },
    bindPerSecond: bound.length / ((lastBound - first) / 1000),
    createPerSecond: all.length / ((lastCreated - first) / 1000),
    wallMs: (timedOut ? first + timeoutMs : last) - first,
    deleteMs: del.ms, deleteLeft: del.left, timedOut, errors,
  };
}

/** Deletes every pod of the namespace and waits (at most timeoutMs) until none is left. */
export async function deleteAll(client: KubeClient, namespace: string, timeoutMs: number): Promise<{ ms: number; left: number }> {
  const start = performance.now();
  const deleting = (async () => {
    try {
      // One deletecollection request instead of N deletes (N writes queued behind a busy API server).
      await client.raw('DELETE', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0 });
    } catch {
      const pods = (await client.list<Pod>(R.pods, { namespace })).items;
      await pool(pods, CREATE_CONCURRENCY, async (p) => {
        try { await client.delete(R.pods, p.metadata.name ?? '', namespace, { gracePeriodSeconds: 0 }); } catch { /* already gone */ }
      });
    }
  })().catch(() => undefined);
  // The wait cap holds even while the delete requests themselves are slow; they go on in the background.
  await Promise.race([deleting, new Promise((r) => setTimeout(r, timeoutMs))]);
  for (;;) {
    const left = await client.list<Pod>(R.pods, { namespace }).then((l) => l.items.length, () => -1);
    if (left === 0 || performance.now() - start > timeoutMs) return { ms: performance.now() - start, left };
    await new Promise((r) => setTimeout(r, 250));
  }
}
