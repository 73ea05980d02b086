// StatefulSet controller: pods with stable names <set>-0 .. <set>-(n-1), created in order,
// each only once the one before is Running and Ready (OrderedReady; Parallel skips the
// wait), removed in reverse order, and with hostname/subdomain set so the headless
// Service named in spec.serviceName gives each pod a DNS name. A template change is rolled
// out from the highest ordinal down, one pod at a time (RollingUpdate).
import {
  R, WorkQueue, isAlreadyExists, isNotFound, keyOf,
  type Informer, type KubeClient, type Pod,
} from '../../api/kube/index.js';
import { quietConflicts } from './conflict.js';
import { podTemplateHash, stableStringify } from './deployment-util.js';
import { referenceTo, type EventRecorder } from './events.js';
import { controllerKey, controllerRefOf, newControllerRef } from './owner.js';
import { isPodAvailable, isPodReady } from './pod-util.js';
import type { SharedInformers } from './shared-informers.js';
import { WR, type StatefulSet } from './workload-types.js';

export const POD_NAME_LABEL = 'statefulset.kubernetes.io/pod-name';
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';
export const REVISION_HASH_LABEL = 'controller-revision-hash';

/** The ordinal of a pod named <set>-<n>, or -1 if the name is not one of the set's. */
export function ordinalOf(setName: string, podName: string | undefined): number {
  if (!podName?.startsWith(`${setName}-`)) return -1;
  const rest = podName.slice(setName.length + 1);
  return /^(0|[1-9]\d*)$/.test(rest) ? Number(rest) : -1;
}

function isRunningAndReady(p: Pod): boolean {
  return p.status?.phase === 'Running' && isPodReady(p) && !p.metadata.deletionTimestamp;
}

export class StatefulSetController {
  private readonly setInformer: Informer<StatefulSet>;
  private readonly podInformer: Informer<Pod>;
  private readonly queue: WorkQueue;

  constructor(private readonly client: KubeClient, informers: SharedInformers, private readonly recorder?: EventRecorder) {
    this.setInformer = informers.for<StatefulSet>(WR.statefulSets);
    this.podInformer = informers.for<Pod>(R.pods);
    this.queue = new WorkQueue('statefulset', quietConflicts((k) => this.sync(k), (k, ms) => this.queue.addAfter(k, ms)), 2);
    this.setInformer.on({ add: (s) => this.queue.add(keyOf(s)), update: (_o, s) => this.queue.add(keyOf(s)) });
    const onPod = (p: Pod) => { const k = controllerKey(p, 'StatefulSet'); if (k) this.queue.add(k); };
    this.podInformer.on({ add: onPod, update: (_o, p) => onPod(p), delete: onPod });
  }

  stop(): void { this.queue.stop(); }

  async sync(key: string): Promise<void> {
    const set = this.setInformer.get(key);
    if (!set || set.metadata.deletionTimestamp) return;
    const name = set.metadata.name as string;
    const revision = podTemplateHash(set.spec.template);
    const byOrdinal = new Map<number, Pod>();
    for (const p of this.podInformer.list()) {
      if (p.metadata.namespace !== set.metadata.namespace || controllerRefOf(p)?.uid !== set.metadata.uid) continue;
      const i = ordinalOf(name, p.metadata.name);
      if (i >= 0) byOrdinal.set(i, p);
    }
    await this.converge(set, byOrdinal, revision);
    await this.updateStatus(set, [...byOrdinal.values()], revision);
  }

  /** One step toward the desired pods; returns after any action that must be observed first. */
  private async converge(set: StatefulSet, pods: Map<number, Pod>, revision: string): Promise<void> {
    const replicas = set.spec.replicas ?? 1;
    const ordered = set.spec.podManagementPolicy !== 'Parallel';
    // A failed pod is replaced under the same name.
    for (const [i, p] of pods) {
      if (p.status?.phase === 'Failed' && !p.metadata.deletionTimestamp) { await this.deletePod(set, p); pods.delete(i); if (ordered) return; }
    }
    for (let i = 0; i < replicas; i++) {
      const p = pods.get(i);
      if (!p) {
        await this.createPod(set, i, revision);
        if (ordered) return;
        continue;
      }
      // OrderedReady: ordinal i+1 waits for ordinal i.
      if (ordered && !isRunningAndReady(p)) return;
    }
    // Scale down: highest ordinal first, one at a time, once everything below is healthy.
    const extra = [...pods.keys()].filter((i) => i >= replicas).sort((a, b) => b - a);
    if (extra.length) {
      if (ordered && [...pods.values()].some((p) => p.metadata.deletionTimestamp)) return;
      for (const i of ordered ? extra.slice(0, 1) : extra) {
        const p = pods.get(i) as Pod;
        if (!p.metadata.deletionTimestamp) await this.deletePod(set, p);
      }
      return;
    }
    // RollingUpdate: replace the highest-ordinal pod of an old revision once all are ready.
    if (set.spec.updateStrategy?.type === 'OnDelete') return;
    const all = [...pods.entries()].sort((a, b) => b[0] - a[0]);
    if (all.some(([, p]) => !isRunningAndReady(p))) return;
    const stale = all.find(([, p]) => p.metadata.labels?.[REVISION_HASH_LABEL] !== `${set.metadata.name}-${revision}`);
    if (stale) await this.deletePod(set, stale[1]);
  }

  private async createPod(set: StatefulSet, i: number, revision: string): Promise<void> {
    const t = set.spec.template;
    const podName = `${set.metadata.name}-${i}`;
    const pod: Pod = {
      metadata: {
        name: podName,
        namespace: set.metadata.namespace,
        labels: {
          ...(t.metadata?.labels ?? {}),
          [POD_NAME_LABEL]: podName, [POD_INDEX_LABEL]: String(i), [REVISION_HASH_LABEL]: `${set.metadata.name}-${revision}`,
        },
        annotations: t.metadata?.annotations ? { ...t.metadata.annotations } : undefined,
        ownerReferences: [newControllerRef(set, 'apps/v1', 'StatefulSet')],
      },
      // hostname + subdomain give the pod <name>.<serviceName>.<ns>.svc in cluster DNS.
      spec: { ...structuredClone(t.spec), hostname: podName, ...(set.spec.serviceName ? { subdomain: set.spec.serviceName } : {}) } as Pod['spec'],
    };
    try {
      await this.client.create(R.pods, pod);
      this.recorder?.event(referenceTo(set, WR.statefulSets), 'Normal', 'SuccessfulCreate', `create Pod ${podName} in StatefulSet ${set.metadata.name} successful`);
    } catch (e) {
      if (isAlreadyExists(e)) return; // an old pod of that name still terminating; its deletion event requeues us
      this.recorder?.event(referenceTo(set, WR.statefulSets), 'Warning', 'FailedCreate', `create Pod ${podName} in StatefulSet ${set.metadata.name} failed error: ${(e as Error).message}`);
      throw e;
    }
  }

  private async deletePod(set: StatefulSet, p: Pod): Promise<void> {
    try {
      await this.client.delete(R.pods, p.metadata.name as string, p.metadata.namespace);
      this.recorder?.event(referenceTo(set, WR.statefulSets), 'Normal', 'SuccessfulDelete', `delete Pod ${p.metadata.name} in StatefulSet ${set.metadata.name} successful`);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  private async updateStatus(set: StatefulSet, pods: Pod[], revision: string): Promise<void> {
    const live = pods.filter((p) => !p.metadata.deletionTimestamp);
    const updateRevision = `${set.metadata.name}-${revision}`;
    const updated = live.filter((p) => p.metadata.labels?.[REVISION_HASH_LABEL] === updateRevision).length;
    const status: NonNullable<StatefulSet['status']> = {
      ...(set.status ?? {}),
      observedGeneration: set.metadata.generation ?? 0,
      replicas: live.length,
      readyReplicas: live.filter(isPodReady).length,
      availableReplicas: live.filter((p) => isPodAvailable(p, set.spec.minReadySeconds ?? 0)).length,
      currentReplicas: updated,
      updatedReplicas: updated,
      updateRevision,
      currentRevision: updated === live.length ? updateRevision : (set.status?.currentRevision ?? updateRevision),
    };
    if (stableStringify(status) === stableStringify(set.status ?? {})) return;
    try { await this.client.updateStatus(WR.statefulSets, { ...set, status }); } catch (e) { if (!isNotFound(e)) throw e; }
  }
}
