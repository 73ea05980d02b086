// ReplicaSet controller: keeps spec.replicas active pods for each ReplicaSet, creating
// pods from the template and deleting the cheapest surplus, and reports counts in status.
// Level-triggered: handlers only enqueue the ReplicaSet key; sync(key) reads the caches.
import {
  R, WorkQueue, isNotFound, keyOf, matchesSelector,
  type Informer, type KubeClient, type Pod, type ReplicaSet,
} from '../../api/kube/index.js';
import { claimDependents } from './claim.js';
import { referenceTo, type EventRecorder } from './events.js';
import { Expectations } from './expectations.js';
import { controllerKey, newControllerRef } from './owner.js';
import { compareForDeletion, isPodActive, isPodAvailable, isPodReady, msUntilAvailable } from './pod-util.js';
import { quietConflicts } from './conflict.js';
import type { SharedInformers } from './shared-informers.js';

const BURST = 500; // Never create or delete more than this many pods in one sync.

export class ReplicaSetController {
  private readonly rsInformer: Informer<ReplicaSet>;
  private readonly podInformer: Informer<Pod>;
  private readonly queue: WorkQueue;
  readonly expectations = new Expectations();

  constructor(private readonly client: KubeClient, informers: SharedInformers, private readonly recorder?: EventRecorder) {
    this.rsInformer = informers.for<ReplicaSet>(R.replicaSets);
    this.podInformer = informers.for<Pod>(R.pods);
    this.queue = new WorkQueue('replicaset', quietConflicts((k) => this.sync(k), (k, ms) => this.queue.addAfter(k, ms)), 2);
    this.rsInformer.on({
      add: (rs) => this.queue.add(keyOf(rs)),
      update: (_old, rs) => this.queue.add(keyOf(rs)),
      delete: (rs) => { this.expectations.forget(keyOf(rs)); this.queue.add(keyOf(rs)); },
    });
    this.podInformer.on({
      add: (pod) => this.podAdded(pod),
      update: (old, pod) => this.podUpdated(old, pod),
      delete: (pod) => this.podDeleted(pod),
    });
  }

  stop(): void { this.queue.stop(); }

  private podAdded(pod: Pod): void {
    const key = controllerKey(pod, 'ReplicaSet');
    if (key) {
      if (pod.metadata.deletionTimestamp) this.expectations.deletionObserved(key, pod.metadata.uid);
      else this.expectations.creationObserved(key);
      this.queue.add(key);
      return;
    }
    // An orphan: every ReplicaSet that selects it may adopt it.
    for (const k of this.selectingReplicaSets(pod)) this.queue.add(k);
  }

  private podUpdated(old: Pod, pod: Pod): void {
    const key = controllerKey(pod, 'ReplicaSet');
    const oldKey = controllerKey(old, 'ReplicaSet');
    if (pod.metadata.deletionTimestamp && !old.metadata.deletionTimestamp && key) {
      // Graceful deletion started: the pod no longer counts, as if it were gone.
      this.expectations.deletionObserved(key, pod.metadata.uid);
    }
    if (oldKey && oldKey !== key) this.queue.add(oldKey);
    if (key) { this.queue.add(key); return; }
    for (const k of this.selectingReplicaSets(pod)) this.queue.add(k);
  }

  private podDeleted(pod: Pod): void {
    const key = controllerKey(pod, 'ReplicaSet');
    if (!key) return;
    this.expectations.deletionObserved(key, pod.metadata.uid);
    this.queue.add(key);
  }

  private selectingReplicaSets(pod: Pod): string[] {
    return this.rsInformer.list()
      .filter((rs) => rs.metadata.namespace === pod.metadata.namespace && matchesSelector(rs.spec.selector, pod.metadata.labels))
      .map(keyOf);
  }

  async sync(key: string): Promise<void> {
    const rs = this.rsInformer.get(key);
    if (!rs) { this.expectations.forget(key); return; }
    const ns = rs.metadata.namespace as string;
    const candidates = this.podInformer.list().filter((p) => p.metadata.namespace === ns && isPodActive(p));
    const pods = await claimDependents<Pod>(this.client, R.pods, rs, newControllerRef(rs, 'apps/v1', 'ReplicaSet'),
      (p) => matchesSelector(rs.spec.selector, p.metadata.labels), candidates);

    if (this.expectations.satisfied(key) && !rs.metadata.deletionTimestamp) {
      await this.manageReplicas(key, rs, pods);
    }
    await this.updateStatus(key, rs, pods);
  }

  private async manageReplicas(key: string, rs: ReplicaSet, pods: Pod[]): Promise<void> {
    const want = rs.spec.replicas ?? 1;
    const diff = pods.length - want;
    if (diff < 0) {
      const n = Math.min(-diff, BURST);
      this.expectations.expectCreations(key, n);
      let created = 0;
      try {
        // Slow start (1, 2, 4, ...): a template the server rejects fails once, not n times.
        for (let batch = 1; created < n; batch *= 2) {
          const size = Math.min(batch, n - created);
          await Promise.all(Array.from({ length: size }, () => this.createPod(rs)));
          created += size;
        }
      } catch (e) {
        for (let i = created; i < n; i++) this.expectations.creationObserved(key);
        throw e;
      }
    } else if (diff > 0) {
      const victims = [...pods].sort(compareForDeletion).slice(0, Math.min(diff, BURST));
      this.expectations.expectDeletions(key, victims.map((p) => p.metadata.uid as string));
      await Promise.all(victims.map(async (pod) => {
        try {
          await this.client.delete(R.pods, pod.metadata.name as string, pod.metadata.namespace);
          this.recorder?.event(referenceTo(rs, R.replicaSets), 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`);
        } catch (e) {
          this.expectations.deletionObserved(key, pod.metadata.uid);
          if (!isNotFound(e)) {
            this.recorder?.event(referenceTo(rs, R.replicaSets), 'Warning', 'FailedDelete', `Error deleting: ${(e as Error).message}`);
            throw e;
          }
        }
      }));
    }
  }

  private async createPod(rs: ReplicaSet): Promise<void> {
    const t = rs.spec.template;
    const pod: Pod = {
      metadata: {
        generateName: `${rs.metadata.name}-`,
        namespace: rs.metadata.namespace,
        labels: { ...(t.metadata?.labels ?? {}) },
        annotations: t.metadata?.annotations ? { ...t.metadata.annotations } : undefined,
        ownerReferences: [newControllerRef(rs, 'apps/v1', 'ReplicaSet')],
      },
      spec: structuredClone(t.spec),
    };
    try {
      const created = await this.client.create(R.pods, pod);
      this.recorder?.event(referenceTo(rs, R.replicaSets), 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata.name}`);
    } catch (e) {
      this.recorder?.event(referenceTo(rs, R.replicaSets), 'Warning', 'FailedCreate', `Error creating: ${(e as Error).message}`);
      throw e;
    }
  }

  private async updateStatus(key: string, rs: ReplicaSet, pods: Pod[]): Promise<void> {
    const minReady = rs.spec.minReadySeconds ?? 0;
    const now = Date.now();
    const templateLabels = rs.spec.template.metadata?.labels ?? {};
    const status = {
      replicas: pods.length,
      fullyLabeledReplicas: pods.filter((p) => Object.entries(templateLabels).every(([k, v]) => p.metadata.labels?.[k] === v)).length,
      readyReplicas: pods.filter(isPodReady).length,
      availableReplicas: pods.filter((p) => isPodAvailable(p, minReady, now)).length,
      observedGeneration: rs.metadata.generation ?? 0,
    };
    const cur = rs.status ?? {};
    const same = (Object.keys(status) as (keyof typeof status)[]).every((k) => (cur[k] ?? 0) === status[k]);
    if (!same) {
      try {
        await this.client.updateStatus(R.replicaSets, { ...rs, status: { ...cur, ...status } });
      } catch (e) {
        if (isNotFound(e)) return;
        throw e;
      }
    }
    // Ready pods turn available after minReadySeconds with no event: look again then.
    const waits = pods.map((p) => msUntilAvailable(p, minReady, now)).filter((x): x is number => x !== undefined);
    if (waits.length) this.queue.addAfter(key, Math.min(...waits) + 50);
  }
}
