// The scheduler: watches pods without a node (fieldSelector spec.nodeName=) and Nodes,
// filters nodes (schedulable, taints, nodeSelector/affinity, host ports, resources, topology
// spread), scores the rest (least allocated, preferred node affinity, PreferNoSchedule
// taints, topology spread, with kube-scheduler's default weights), and binds with
// POST pods/<name>/binding. A pod no node fits gets
// PodScheduled=False/Unschedulable saying why, and is retried when nodes change.
import {
  Informer, R, WorkQueue, isConflict, isNotFound, keyOf,
  type KubeClient, type Node, type Pod, type PodCondition,
} from '../../api/kube/index.js';
import { EventRecorder, referenceTo } from '../controllers/events.js';
import { filterNode, fitErrorMessage } from './predicates.js';
import { addResources, podRequests, type Resources } from './resources.js';
import { nonZeroRequests, scoreNodes } from './score.js';
import type { Placement } from './spread.js';

export const DEFAULT_SCHEDULER_NAME = 'default-scheduler';
const RETRY_UNSCHEDULABLE_MS = 30_000;
const ASSUME_TTL_MS = 30_000;

export interface SchedulerOptions {
  client: KubeClient;
  schedulerName?: string;
  /** Where Scheduled / FailedScheduling events go (default: a recorder with component = schedulerName). */
  recorder?: EventRecorder;
}

interface Assumed { node: string; pod: Pod; requests: Resources; at: number }
interface NodeUsage { used: Resources; usedNonZero: Resources }

export async function startScheduler(opts: SchedulerOptions): Promise<{ stop(): void }> {
  const name = opts.schedulerName ?? DEFAULT_SCHEDULER_NAME;
  const s = new Scheduler(opts.client, name, opts.recorder ?? new EventRecorder(opts.client, { component: name }));
  await s.start();
  return { stop: () => s.stop() };
}

export class Scheduler {
  private readonly pending: Informer<Pod>;
  private readonly assigned: Informer<Pod>;
  private readonly nodes: Informer<Node>;
  private readonly queue: WorkQueue;
  /** Pods we bound that the assigned informer has not shown yet: their resources are taken. */
  private readonly assumed = new Map<string, Assumed>();
  private readonly unschedulable = new Set<string>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly client: KubeClient, readonly schedulerName: string, private readonly recorder?: EventRecorder) {
    this.pending = new Informer<Pod>(client, R.pods, { fieldSelector: 'spec.nodeName=' });
    this.assigned = new Informer<Pod>(client, R.pods, { fieldSelector: 'spec.nodeName!=' });
    this.nodes = new Informer<Node>(client, R.nodes);
    this.queue = new WorkQueue(`scheduler ${schedulerName}`, (key) => this.schedule(key));
    this.pending.on({
      add: (p) => this.enqueue(p),
      update: (_o, p) => this.enqueue(p),
      delete: (p) => this.unschedulable.delete(keyOf(p)),
    });
    this.assigned.on({
      add: (p) => this.assumed.delete(keyOf(p)),
      update: (_o, p) => this.assumed.delete(keyOf(p)),
      // Freed resources may let a waiting pod fit.
      delete: () => this.retryUnschedulable(),
    });
    this.nodes.on({ add: () => this.retryUnschedulable(), update: () => this.retryUnschedulable() });
  }

  async start(): Promise<void> {
    this.nodes.start(); this.assigned.start(); this.pending.start();
    await Promise.all([this.nodes.waitForSync(), this.assigned.waitForSync(), this.pending.waitForSync()]);
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const [k, a] of this.assumed) if (now - a.at > ASSUME_TTL_MS) this.assumed.delete(k);
      this.retryUnschedulable();
    }, RETRY_UNSCHEDULABLE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.queue.stop();
    this.pending.stop(); this.assigned.stop(); this.nodes.stop();
  }

  private responsibleFor(pod: Pod): boolean {
    return (pod.spec.schedulerName ?? DEFAULT_SCHEDULER_NAME) === this.schedulerName
      && !pod.spec.nodeName && !pod.metadata.deletionTimestamp;
  }

  private enqueue(pod: Pod): void {
    if (this.responsibleFor(pod)) this.queue.add(keyOf(pod));
  }

  private retryUnschedulable(): void {
    for (const key of this.unschedulable) this.queue.add(key);
  }

  /** Resources already committed on each node: bound pods plus pods we just bound. */
  private usage(): Map<string, NodeUsage> {
    const out = new Map<string, NodeUsage>();
    const add = (node: string, r: Resources) => {
      const u = out.get(node) ?? { used: {}, usedNonZero: {} };
      u.used = addResources(u.used, r);
      u.usedNonZero = addResources(u.usedNonZero, nonZeroRequests(r));
      out.set(node, u);
    };
    for (const p of this.assigned.list()) {
      const phase = p.status?.phase;
      if (!p.spec.nodeName || phase === 'Succeeded' || phase === 'Failed') continue;
      try { add(p.spec.nodeName, podRequests(p)); } catch { /* invalid requests were rejected at admission */ }
    }
    for (const [key, a] of this.assumed) if (!this.assigned.get(key)) add(a.node, a.requests);
    return out;
  }

  /** The pods on each node: bound ones (not finished) plus those we just bound. */
  private placement(nodes: readonly Node[]): Placement {
    const byNode = new Map<string, Pod[]>();
    const add = (node: string, p: Pod) => { const l = byNode.get(node); if (l) l.push(p); else byNode.set(node, [p]); };
    for (const p of this.assigned.list()) {
      const phase = p.status?.phase;
      if (p.spec.nodeName && phase !== 'Succeeded' && phase !== 'Failed') add(p.spec.nodeName, p);
    }
    for (const [key, a] of this.assumed) if (!this.assigned.get(key)) add(a.node, { ...a.pod, spec: { ...a.pod.spec, nodeName: a.node } });
    return { nodes, podsOn: (node) => byNode.get(node) ?? [] };
  }

  async schedule(key: string): Promise<void> {
    const pod = this.pending.get(key);
    if (!pod || !this.responsibleFor(pod) || this.assumed.has(key)) return;
    let requests: Resources;
    try { requests = podRequests(pod); } catch (e) {
      await this.failed(pod, `pod ${key}: ${(e as Error).message}`);
      return;
    }
    const nodes = this.nodes.list();
    const usage = this.usage();
    const placement = this.placement(nodes);
    const reasons: string[][] = [];
    const feasible: Node[] = [];
    for (const node of nodes) {
      const u = usage.get(node.metadata.name as string) ?? { used: {}, usedNonZero: {} };
      const why = filterNode(pod, node, u.used, placement);
      if (why.length) reasons.push(why);
      else feasible.push(node);
    }
    const scores = scoreNodes(pod, requests, feasible, placement, (n) => usage.get(n)?.usedNonZero ?? {});
    let best: { node: Node; score: number }[] = [];
    for (const node of feasible) {
      const score = scores.get(node.metadata.name as string) ?? 0;
      if (!best.length || score > best[0].score + 1e-9) best = [{ node, score }];
      else if (Math.abs(score - best[0].score) <= 1e-9) best.push({ node, score });
    }
    if (!best.length) {
      this.unschedulable.add(key);
      await this.failed(pod, fitErrorMessage(nodes.length, reasons));
      return;
    }
    // Equal scores: pick at random so equal nodes share the load.
    const target = best[Math.floor(Math.random() * best.length)].node.metadata.name as string;
    this.unschedulable.delete(key);
    this.assumed.set(key, { node: target, pod, requests, at: Date.now() });
    // The binding cycle runs in the background, as kube-scheduler's does: the next pod is
    // placed against this assumed placement instead of waiting for the API round trip.
    void this.bind(pod, key, target);
  }

  private async bind(pod: Pod, key: string, target: string): Promise<void> {
    try {
      await this.client.createSubresource(R.pods, pod.metadata.name as string, pod.metadata.namespace, 'binding', {
        apiVersion: 'v1', kind: 'Binding',
        metadata: { name: pod.metadata.name, namespace: pod.metadata.namespace, uid: pod.metadata.uid },
        target: { apiVersion: 'v1', kind: 'Node', name: target },
      });
    } catch (e) {
      this.assumed.delete(key);
      if (isNotFound(e) || isConflict(e)) return; // gone, or bound by someone else meanwhile
      console.error(`scheduler: binding ${key} to ${target} failed, retrying: ${(e as Error).message}`);
      this.queue.addAfter(key, 1_000);
      return;
    }
    this.recorder?.event(referenceTo(pod, R.pods), 'Normal', 'Scheduled', `Successfully assigned ${key} to ${target}`);
  }

  /** Every failed attempt is an event (repeats aggregate into its count); the condition changes only when the reason does. */
  private async failed(pod: Pod, message: string): Promise<void> {
    this.recorder?.event(referenceTo(pod, R.pods), 'Warning', 'FailedScheduling', message);
    await this.markUnschedulable(pod, message);
  }

  private async markUnschedulable(pod: Pod, message: string): Promise<void> {
    const conds = pod.status?.conditions ?? [];
    const cur = conds.find((c) => c.type === 'PodScheduled');
    if (cur && cur.status === 'False' && cur.reason === 'Unschedulable' && cur.message === message) return;
    const cond: PodCondition = {
      type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message,
      lastTransitionTime: cur?.status === 'False' && cur.lastTransitionTime ? cur.lastTransitionTime : new Date().toISOString(),
    };
    const conditions = [...conds.filter((c) => c.type !== 'PodScheduled'), { ...cond, lastProbeTime: null }];
    try {
      await this.client.patch(R.pods, pod.metadata.name as string, pod.metadata.namespace, { status: { conditions } }, 'merge', { subresource: 'status' });
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
  }
}
