// DaemonSet controller: one pod on every node the pod template may run on (nodeSelector,
// node affinity, tolerated taints). Each pod is pinned with required node affinity on
// metadata.name, as Kubernetes' DaemonSet controller does, so the scheduler still binds it
// and accounts its resources. Template changes roll out node by node (maxUnavailable).
import {
  R, WorkQueue, isNotFound, keyOf,
  type Informer, type KubeClient, type Node, type Pod,
} from '../../api/kube/index.js';
import { checkNodeAffinity, checkTaints } from '../scheduler/predicates.js';
import { quietConflicts } from './conflict.js';
import { podTemplateHash, resolveIntOrPercent, stableStringify } from './deployment-util.js';
import { referenceTo, type EventRecorder } from './events.js';
import { Expectations } from './expectations.js';
import { controllerKey, controllerRefOf, newControllerRef } from './owner.js';
import { isPodActive, isPodAvailable, isPodReady } from './pod-util.js';
import type { SharedInformers } from './shared-informers.js';
import { WR, type DaemonSet } from './workload-types.js';

const REVISION_HASH_LABEL = 'controller-revision-hash';

// Tolerations every daemon pod gets, so node trouble does not evict node agents.
const DAEMON_TOLERATIONS = [
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/pid-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
];

type Affinity = { nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms?: { matchFields?: { key: string; operator: string; values?: string[] }[] }[] } } };

/** The node a daemon pod is meant for: spec.nodeName, or the metadata.name its affinity pins. */
export function targetNodeOf(p: Pod): string | undefined {
  if (p.spec.nodeName) return p.spec.nodeName;
  const terms = (p.spec as { affinity?: Affinity }).affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  for (const t of terms) for (const f of t.matchFields ?? []) if (f.key === 'metadata.name' && f.operator === 'In' && f.values?.length === 1) return f.values[0];
  return undefined;
}

export class DaemonSetController {
  private readonly dsInformer: Informer<DaemonSet>;
  private readonly podInformer: Informer<Pod>;
  private readonly nodeInformer: Informer<Node>;
  private readonly queue: WorkQueue;
  private readonly expectations = new Expectations();

  constructor(private readonly client: KubeClient, informers: SharedInformers, private readonly recorder?: EventRecorder) {
    this.dsInformer = informers.for<DaemonSet>(WR.daemonSets);
    this.podInformer = informers.for<Pod>(R.pods);
    this.nodeInformer = informers.for<Node>(R.nodes);
    this.queue = new WorkQueue('daemonset', quietConflicts((k) => this.sync(k), (k, ms) => this.queue.addAfter(k, ms)), 2);
    this.dsInformer.on({ add: (d) => this.queue.add(keyOf(d)), update: (_o, d) => this.queue.add(keyOf(d)), delete: (d) => this.expectations.forget(keyOf(d)) });
    this.podInformer.on({
      add: (p) => { const k = controllerKey(p, 'DaemonSet'); if (k) { this.expectations.creationObserved(k); this.queue.add(k); } },
      update: (_o, p) => { const k = controllerKey(p, 'DaemonSet'); if (k) this.queue.add(k); },
      delete: (p) => { const k = controllerKey(p, 'DaemonSet'); if (k) { this.expectations.deletionObserved(k, p.metadata.uid); this.queue.add(k); } },
    });
    // Any node change may change where daemons belong.
    const all = () => { for (const d of this.dsInformer.list()) this.queue.add(keyOf(d)); };
    this.nodeInformer.on({ add: all, update: all, delete: all });
  }

  stop(): void { this.queue.stop(); }

  /**
   * Should a daemon pod be started on the node (selector, affinity, NoSchedule and NoExecute
   * taints; resources are the scheduler's business), and may one already there keep running
   * (only NoExecute taints evict: a node turning NotReady for a moment keeps its daemons)?
   */
  placement(ds: DaemonSet, node: Node): { shouldRun: boolean; shouldContinue: boolean } {
    const probe: Pod = { metadata: {}, spec: { ...ds.spec.template.spec, tolerations: [...(ds.spec.template.spec.tolerations ?? []), ...DAEMON_TOLERATIONS] } };
    if (checkNodeAffinity(probe, node)) return { shouldRun: false, shouldContinue: false };
    if (!checkTaints(probe, node)) return { shouldRun: true, shouldContinue: true };
    const noExecute: Node = { ...node, spec: { ...node.spec, taints: (node.spec?.taints ?? []).filter((t) => t.effect === 'NoExecute') }, status: { conditions: [{ type: 'Ready', status: 'True' }] } };
    return { shouldRun: false, shouldContinue: !checkTaints(probe, noExecute) };
  }

  async sync(key: string): Promise<void> {
    const ds = this.dsInformer.get(key);
    if (!ds || ds.metadata.deletionTimestamp) { this.expectations.forget(key); return; }
    const revision = `${ds.metadata.name}-${podTemplateHash(ds.spec.template)}`;
    const pods = this.podInformer.list().filter((p) => p.metadata.namespace === ds.metadata.namespace && controllerRefOf(p)?.uid === ds.metadata.uid);
    const byNode = new Map<string, Pod[]>();
    for (const p of pods) {
      const n = targetNodeOf(p);
      if (n) byNode.set(n, [...(byNode.get(n) ?? []), p]);
    }
    const nodes = this.nodeInformer.list();
    const eligible = new Set<string>();
    const tolerated = new Set<string>();
    for (const n of nodes) {
      const { shouldRun, shouldContinue } = this.placement(ds, n);
      if (shouldRun) eligible.add(n.metadata.name as string);
      if (shouldContinue) tolerated.add(n.metadata.name as string);
    }

    if (this.expectations.satisfied(key)) {
      const create: string[] = [];
      const remove: Pod[] = [];
      for (const node of eligible) {
        const live = (byNode.get(node) ?? []).filter(isPodActive);
        // A failed daemon pod is replaced; extra pods on one node are trimmed to the oldest.
        for (const p of byNode.get(node) ?? []) if (p.status?.phase === 'Failed' && !p.metadata.deletionTimestamp) remove.push(p);
        if (!live.length) create.push(node);
        else remove.push(...live.sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '')).slice(1));
      }
      for (const [node, ps] of byNode) if (!tolerated.has(node)) remove.push(...ps.filter((p) => !p.metadata.deletionTimestamp));
      remove.push(...this.rollingUpdateVictims(ds, byNode, eligible, revision));
      const uniq = [...new Map(remove.map((p) => [p.metadata.uid, p])).values()];
      if (create.length) this.expectations.expectCreations(key, create.length);
      const results = await Promise.allSettled([
        ...create.map((n) => this.createPod(ds, n, revision)),
        ...uniq.map((p) => this.deletePod(ds, p)),
      ]);
      const failedCreates = results.slice(0, create.length).filter((r) => r.status === 'rejected').length;
      for (let i = 0; i < failedCreates; i++) this.expectations.creationObserved(key);
      const err = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (err) throw err.reason;
    }
    await this.updateStatus(ds, byNode, eligible, revision);
  }

  /** Old-revision pods to replace now: as many as maxUnavailable allows, unavailable ones first. */
  private rollingUpdateVictims(ds: DaemonSet, byNode: Map<string, Pod[]>, eligible: Set<string>, revision: string): Pod[] {
    if (ds.spec.updateStrategy?.type === 'OnDelete') return [];
    const maxUnavailable = Math.max(1, resolveIntOrPercent(ds.spec.updateStrategy?.rollingUpdate?.maxUnavailable, eligible.size, true, '1'));
    const minReady = ds.spec.minReadySeconds ?? 0;
    let unavailable = 0;
    const old: Pod[] = [];
    for (const node of eligible) {
      const live = (byNode.get(node) ?? []).filter(isPodActive);
      if (!live.length || !live.some((p) => isPodAvailable(p, minReady))) unavailable++;
      for (const p of live) if (p.metadata.labels?.[REVISION_HASH_LABEL] !== revision) old.push(p);
    }
    const unhealthy = old.filter((p) => !isPodAvailable(p, minReady));
    const healthy = old.filter((p) => isPodAvailable(p, minReady));
    return [...unhealthy, ...healthy.slice(0, Math.max(0, maxUnavailable - unavailable))];
  }

  private async createPod(ds: DaemonSet, node: string, revision: string): Promise<void> {
    const t = ds.spec.template;
    const spec = structuredClone(t.spec) as Pod['spec'] & { affinity?: Affinity & Record<string, unknown> };
    // Pin to the node through required affinity (replacing any node-name term), leaving binding to the scheduler.
    spec.affinity = {
      ...(spec.affinity ?? {}),
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }] } },
    };
    const existing = spec.tolerations ?? [];
    spec.tolerations = [...existing, ...DAEMON_TOLERATIONS.filter((d) => !existing.some((t2) => t2.key === d.key && t2.effect === d.effect))];
    const pod: Pod = {
      metadata: {
        generateName: `${ds.metadata.name}-`,
        namespace: ds.metadata.namespace,
        labels: { ...(t.metadata?.labels ?? {}), [REVISION_HASH_LABEL]: revision, 'pod-template-generation': String(ds.metadata.generation ?? 1) },
        annotations: t.metadata?.annotations ? { ...t.metadata.annotations } : undefined,
        ownerReferences: [newControllerRef(ds, 'apps/v1', 'DaemonSet')],
      },
      spec,
    };
    try {
      const created = await this.client.create(R.pods, pod);
      this.recorder?.event(referenceTo(ds, WR.daemonSets), 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata.name}`);
    } catch (e) {
      this.recorder?.event(referenceTo(ds, WR.daemonSets), 'Warning', 'FailedCreate', `Error creating: ${(e as Error).message}`);
      throw e;
    }
  }

  private async deletePod(ds: DaemonSet, p: Pod): Promise<void> {
    try {
      await this.client.delete(R.pods, p.metadata.name as string, p.metadata.namespace);
      this.recorder?.event(referenceTo(ds, WR.daemonSets), 'Normal', 'SuccessfulDelete', `Deleted pod: ${p.metadata.name}`);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  private async updateStatus(ds: DaemonSet, byNode: Map<string, Pod[]>, eligible: Set<string>, revision: string): Promise<void> {
    const minReady = ds.spec.minReadySeconds ?? 0;
    let current = 0; let misscheduled = 0; let ready = 0; let available = 0; let updated = 0;
    for (const [node, ps] of byNode) {
      const live = ps.filter(isPodActive);
      if (!live.length) continue;
      if (!eligible.has(node)) { misscheduled++; continue; }
      current++;
      if (live.some(isPodReady)) ready++;
      if (live.some((p) => isPodAvailable(p, minReady))) available++;
      if (live.some((p) => p.metadata.labels?.[REVISION_HASH_LABEL] === revision)) updated++;
    }
    const status: NonNullable<DaemonSet['status']> = {
      ...(ds.status ?? {}),
      observedGeneration: ds.metadata.generation ?? 0,
      desiredNumberScheduled: eligible.size,
      currentNumberScheduled: current,
      numberMisscheduled: misscheduled,
      numberReady: ready,
      numberAvailable: available,
      numberUnavailable: Math.max(0, eligible.size - available),
      updatedNumberScheduled: updated,
    };
    if (stableStringify(status) === stableStringify(ds.status ?? {})) return;
    try { await this.client.updateStatus(WR.daemonSets, { ...ds, status }); } catch (e) { if (!isNotFound(e)) throw e; }
  }
}
