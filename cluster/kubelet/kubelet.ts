// The node agent: registers the Node, watches the pods bound to it and reconciles each one
// (per-pod, level-triggered sync through a work queue), posting pod status when it changes.
import fs from 'node:fs';
import path from 'node:path';
import type { KubeClient, Pod } from '../../api/kube/index.js';
import { Informer, R, WorkQueue, isConflict, isNotFound, keyOf } from '../../api/kube/index.js';
import { parseCidr } from '../network/cidr.js';
import { validateKubeletPrefix } from '../network/names.js';
import { cgroupSupport, removeSlice, type MemoryCgroupBackend } from './cgroups.js';
import { EventRecorder } from './events.js';
import { Ipam } from './ipam.js';
import { NodeHeartbeat, registerNode } from './node-status.js';
import { PodRuntime } from './pod-runtime.js';
import { removeLeftoverSandboxes } from './sandbox.js';

export interface KubeletOptions {
  client: KubeClient;
  nodeName: string;
  prefix: string;
  bridge: string;
  gatewayIP: string;
  nodePodCIDR: string;
  imageCatalogs: string[];
  dataDir: string;
  clusterDNS: string;
  clusterDomain: string;
  /** Enforce resources.limits.memory with cgroups where the machine allows (default true). */
  memoryCgroups?: boolean;
}

const POD_WORKERS = 8;
const STOP_GRACE_MS = 2_000;
const DEFAULT_GRACE_SECONDS = 30;

function isTerminalPhase(pod: Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/** Key-order-independent JSON, to compare a computed status with the stored one. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export class Kubelet {
  private readonly runtimes = new Map<string, PodRuntime>(); // pod key -> runtime
  private readonly informer: Informer<Pod>;
  private readonly queue: WorkQueue;
  private readonly heartbeat: NodeHeartbeat;
  private readonly ipam: Ipam;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly prefixLength: number;
  private stopping = false;
  readonly events: EventRecorder;
  /** Where pod cgroups are made, or why memory limits are not enforced. */
  cgroups: { backend?: MemoryCgroupBackend; reason?: string } = { reason: 'not started' };

  constructor(private readonly o: KubeletOptions) {
    validateKubeletPrefix(o.prefix);
    this.prefixLength = parseCidr(o.nodePodCIDR, 'nodePodCIDR').prefixLength;
    this.ipam = new Ipam(path.join(o.dataDir, 'ipam.json'), o.nodePodCIDR, o.gatewayIP);
    this.informer = new Informer<Pod>(o.client, R.pods, { fieldSelector: `spec.nodeName=${o.nodeName}` });
    this.queue = new WorkQueue(`kubelet ${o.nodeName}`, (key) => this.tracked(key), POD_WORKERS);
    this.events = new EventRecorder(o.client, o.nodeName);
    this.heartbeat = new NodeHeartbeat(o.client, { nodeName: o.nodeName, gatewayIP: o.gatewayIP, nodePodCIDR: o.nodePodCIDR });
  }

  async start(): Promise<void> {
    fs.mkdirSync(path.join(this.o.dataDir, 'pods'), { recursive: true });
    // A previous run that crashed left sandboxes (and maybe processes) behind: start clean,
    // then recreate every pod still assigned here.
    const removed = await removeLeftoverSandboxes(this.o.prefix);
    if (removed.length) console.error(`kubelet: removed leftovers of a previous run: ${removed.join(' ')}`);
    if (this.o.memoryCgroups ?? true) {
      await removeSlice(this.o.prefix); // a crashed run's pod groups (and stragglers in them)
      this.cgroups = cgroupSupport(this.o.prefix);
      if (!this.cgroups.backend) console.error(`kubelet: memory limits are not enforced: ${this.cgroups.reason}`);
    } else {
      this.cgroups = { reason: 'disabled (memoryCgroups: false)' };
    }
    await registerNode(this.o.client, { nodeName: this.o.nodeName, gatewayIP: this.o.gatewayIP, nodePodCIDR: this.o.nodePodCIDR });
    await this.markPodsNotRunning();
    this.heartbeat.start();
    this.informer.on({
      add: (p) => this.queue.add(keyOf(p)),
      update: (_old, p) => this.queue.add(keyOf(p)),
      delete: (p) => this.queue.add(keyOf(p)),
    }).start();
    await this.informer.waitForSync();
    this.ipam.retainOnly(new Set(this.informer.list().filter((p) => !isTerminalPhase(p)).map((p) => p.metadata.uid ?? '')));
  }

  /**
   * No container of this node survived the kubelet's restart: until each runs again, its
   * stored status must not say ready (Endpoints, Deployments and `trellis up` read it).
   */
  private async markPodsNotRunning(): Promise<void> {
    const now = new Date().toISOString();
    const pods = await this.o.client.list<Pod>(R.pods, { fieldSelector: `spec.nodeName=${this.o.nodeName}` });
    for (const p of pods.items) {
      const st = p.status;
      if (!st || isTerminalPhase(p) || !st.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) continue;
      const notRunning = (cs: NonNullable<typeof st.containerStatuses>) => cs.map((c) => ({ ...c, ready: false, started: false, state: { waiting: { reason: 'ContainerCreating' } } }));
      const status = {
        ...st,
        conditions: st.conditions.map((c) => (c.type === 'Ready' || c.type === 'ContainersReady'
          ? { ...c, status: 'False' as const, reason: 'KubeletRestarted', message: 'the node agent restarted; containers are being started again', lastTransitionTime: now }
          : c)),
        containerStatuses: notRunning(st.containerStatuses ?? []),
        initContainerStatuses: notRunning(st.initContainerStatuses ?? []),
      };
      try {
        await this.o.client.updateStatus(R.pods, { ...p, status });
      } catch (e) {
        if (!isConflict(e) && !isNotFound(e)) throw e; // changed or gone meanwhile: the sync loop handles it
      }
    }
  }

  /** Runs sync(key) and remembers it, so stop() can wait for syncs in progress. */
  private tracked(key: string): Promise<void> {
    if (this.stopping) return Promise.resolve();
    const p = this.sync(key);
    const t = p.catch(() => undefined);
    this.inFlight.add(t);
    void t.finally(() => this.inFlight.delete(t));
    return p;
  }

  private requeue(key: string, ms?: number): void {
    if (this.stopping) return;
    if (ms && ms > 0) this.queue.addAfter(key, ms);
    else this.queue.add(key);
  }

  private async sync(key: string): Promise<void> {
    const pod = this.informer.get(key);
    let rt = this.runtimes.get(key);

    // Gone from the API, or replaced by a pod of the same name: tear the old one down.
    if (rt && (!pod || pod.metadata.uid !== rt.uid)) {
      await rt.terminate(pod ? 0 : (DEFAULT_GRACE_SECONDS * 1000));
      this.runtimes.delete(key);
      rt = undefined;
    }
    if (!pod) return;

    if (pod.metadata.deletionTimestamp) {
      const graceSeconds = pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
      if (rt) await rt.terminate(graceSeconds * 1000);
      else this.ipam.release(pod.metadata.uid ?? '');
      this.runtimes.delete(key);
      try {
        await this.o.client.delete(R.pods, pod.metadata.name ?? '', pod.metadata.namespace, { gracePeriodSeconds: 0, preconditionsUid: pod.metadata.uid });
      } catch (e) {
        if (!isNotFound(e) && !isConflict(e)) throw e;
      }
      return;
    }

    if (!rt) {
      if (isTerminalPhase(pod)) return; // finished before we (re)started: nothing to run
      rt = new PodRuntime(pod, {
        client: this.o.client, prefix: this.o.prefix, bridge: this.o.bridge, gatewayIP: this.o.gatewayIP,
        prefixLength: this.prefixLength, dataDir: this.o.dataDir, clusterDNS: this.o.clusterDNS,
        clusterDomain: this.o.clusterDomain, imageCatalogs: this.o.imageCatalogs, ipam: this.ipam, cgroups: this.cgroups.backend,
        events: this.events, requeue: (ms) => this.requeue(key, ms),
      });
      this.runtimes.set(key, rt);
    }
    await rt.sync(pod);
    if (!this.stopping) await this.postStatus(pod, rt);
  }

  /** PUT pods/<name>/status when the computed status differs from the stored one. */
  private async postStatus(pod: Pod, rt: PodRuntime): Promise<void> {
    let current = pod;
    for (let attempt = 0; attempt < 3; attempt++) {
      const status = rt.status(current.status);
      if (canonical(status) === canonical(current.status ?? {})) return;
      try {
        await this.o.client.updateStatus<Pod>(R.pods, { ...current, status });
        return;
      } catch (e) {
        if (isNotFound(e)) return;
        if (!isConflict(e)) throw e;
        const fresh = await this.o.client.find<Pod>(R.pods, pod.metadata.name ?? '', pod.metadata.namespace);
        if (!fresh || fresh.metadata.uid !== rt.uid) return;
        current = fresh;
      }
    }
    this.requeue(keyOf(pod), 1000);
  }

  /** PIDs of the containers running for a pod (diagnostics, tests). */
  podPids(key: string): number[] {
    return this.runtimes.get(key)?.pids() ?? [];
  }

  /**
   * Where a container's log is (for a pods/log handler): the named container, or the pod's
   * only app container; `previous` is the run before the current one.
   */
  logPath(namespace: string, name: string, container?: string, previous = false): string | undefined {
    const rt = this.runtimes.get(`${namespace}/${name}`);
    if (!rt) return undefined;
    const c = container ?? this.informer.get(`${namespace}/${name}`)?.spec.containers[0]?.name;
    return c ? rt.logPath(c, previous) : undefined;
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.heartbeat.stop();
    this.informer.stop();
    this.queue.stop();
    await Promise.all([...this.inFlight]);
    await this.events.flush();
    const errors: string[] = [];
    await Promise.all([...this.runtimes.values()].map((rt) => rt.shutdown(STOP_GRACE_MS).catch((e: unknown) => { errors.push((e as Error).message); })));
    this.runtimes.clear();
    // Anything a half-finished sync left behind goes too.
    await removeLeftoverSandboxes(this.o.prefix).catch((e: unknown) => { errors.push((e as Error).message); });
    if (this.cgroups.backend) await removeSlice(this.o.prefix).catch((e: unknown) => { errors.push((e as Error).message); });
    if (errors.length) throw new Error(`kubelet ${this.o.nodeName} stop: ${errors.join('; ')}`);
  }
}

