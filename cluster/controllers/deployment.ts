// Deployment controller: one ReplicaSet per pod template, rolled with RollingUpdate
// (maxSurge / maxUnavailable) or Recreate, and a status kubectl rollout status understands.
// Handlers only enqueue the Deployment key; sync(key) converges from the caches.
import {
  R, WorkQueue, isAlreadyExists, isNotFound, keyOf, matchesSelector,
  type Deployment, type Informer, type KubeClient, type Pod, type ReplicaSet,
} from '../../api/kube/index.js';
import { claimDependents } from './claim.js';
import { referenceTo, type EventRecorder } from './events.js';
import { calculateStatus, isComplete, msUntilDeadline } from './deployment-status.js';
import {
  DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION, TEMPLATE_HASH_LABEL,
  byCreation, copyableAnnotations, proportionalScale, desiredReplicas, isRecreate, podTemplateHash, revisionOf, specReplicas, stableStringify,
  sumSpec, sumStatus, surgeAndUnavailable, templatesEqual,
} from './deployment-util.js';
import { controllerKey, controllerRefOf, isControlledBy, newControllerRef } from './owner.js';
import { quietConflicts } from './conflict.js';
import type { SharedInformers } from './shared-informers.js';

const DEFAULT_REVISION_HISTORY_LIMIT = 10;

interface Plan { d: Deployment; newRS?: ReplicaSet; old: ReplicaSet[]; createdNewRS: boolean }

export class DeploymentController {
  private readonly dInformer: Informer<Deployment>;
  private readonly rsInformer: Informer<ReplicaSet>;
  private readonly podInformer: Informer<Pod>;
  private readonly queue: WorkQueue;

  constructor(private readonly client: KubeClient, informers: SharedInformers, private readonly recorder?: EventRecorder) {
    this.dInformer = informers.for<Deployment>(R.deployments);
    this.rsInformer = informers.for<ReplicaSet>(R.replicaSets);
    this.podInformer = informers.for<Pod>(R.pods);
    this.queue = new WorkQueue('deployment', quietConflicts((k) => this.sync(k), (k, ms) => this.queue.addAfter(k, ms)), 2);
    this.dInformer.on({
      add: (d) => this.queue.add(keyOf(d)),
      update: (_o, d) => this.queue.add(keyOf(d)),
      delete: (d) => this.queue.add(keyOf(d)),
    });
    this.rsInformer.on({
      add: (rs) => this.enqueueOwner(rs),
      update: (old, rs) => { this.enqueueOwner(old); this.enqueueOwner(rs); },
      delete: (rs) => this.enqueueOwner(rs),
    });
    // Recreate waits for old pods to be gone, and only a pod event says when.
    this.podInformer.on({
      delete: (pod) => {
        const rsKey = controllerKey(pod, 'ReplicaSet');
        const rs = rsKey ? this.rsInformer.get(rsKey) : undefined;
        if (rs) this.enqueueOwner(rs);
      },
    });
  }

  stop(): void { this.queue.stop(); }

  private enqueueOwner(rs: ReplicaSet): void {
    const key = controllerKey(rs, 'Deployment');
    if (key) { this.queue.add(key); return; }
    for (const d of this.dInformer.list()) {
      if (d.metadata.namespace === rs.metadata.namespace && matchesSelector(d.spec.selector, rs.metadata.labels)) this.queue.add(keyOf(d));
    }
  }

  async sync(key: string): Promise<void> {
    const d = this.dInformer.get(key);
    if (!d || d.metadata.deletionTimestamp) return;
    const ns = d.metadata.namespace as string;
    const candidates = this.rsInformer.list().filter((rs) => rs.metadata.namespace === ns);
    const owned = await claimDependents<ReplicaSet>(this.client, R.replicaSets, d, newControllerRef(d, 'apps/v1', 'Deployment'),
      (rs) => matchesSelector(d.spec.selector, rs.metadata.labels), candidates);
    const plan = this.split(d, owned);

    if (d.spec.paused) {
      await this.syncPaused(plan);
    } else if (isRecreate(d)) {
      await this.rolloutRecreate(plan);
    } else {
      await this.rolloutRolling(plan);
    }
    await this.syncStatus(key, plan);
  }

  /** Splits owned ReplicaSets into the one matching the current template and the old ones. */
  private split(d: Deployment, owned: ReplicaSet[]): Plan {
    const live = owned.filter((rs) => !rs.metadata.deletionTimestamp).sort(byCreation);
    const hash = podTemplateHash(d.spec.template, collisionCount(d));
    const newRS = live.find((rs) => rs.metadata.labels?.[TEMPLATE_HASH_LABEL] === hash && templatesEqual(rs.spec.template, d.spec.template))
      ?? live.find((rs) => templatesEqual(rs.spec.template, d.spec.template))
      ?? live.find((rs) => rs.metadata.labels?.[TEMPLATE_HASH_LABEL] === hash);
    return { d, newRS, old: live.filter((rs) => rs !== newRS), createdNewRS: false };
  }

  // ---- paused ------------------------------------------------------------------

  /**
   * A paused Deployment never creates a ReplicaSet for a new template, but a replicas change
   * still applies: spread over the active ReplicaSets in proportion to their size, as
   * Kubernetes' proportional scaling does, so a half-done rollout keeps its ratio.
   */
  private async syncPaused(plan: Plan): Promise<void> {
    const { d } = plan;
    const all = plan.newRS ? [...plan.old, plan.newRS] : [...plan.old];
    let active = all.filter((rs) => specReplicas(rs) > 0);
    // Nothing running: the newest ReplicaSet (the current template's, if it exists) takes it all.
    if (!active.length) active = plan.newRS ? [plan.newRS] : all.slice(-1);
    if (!active.length) return;
    const targets = proportionalScale(active.map(specReplicas), desiredReplicas(d));
    for (let i = 0; i < active.length; i++) {
      if (targets[i] === specReplicas(active[i])) continue;
      const scaled = await this.scale(d, active[i], targets[i]);
      if (active[i] === plan.newRS) plan.newRS = scaled;
      else plan.old[plan.old.indexOf(active[i])] = scaled;
    }
    if (all.every((rs) => specReplicas(rs) === 0 || rs === plan.newRS)) await this.cleanupIfComplete(plan);
  }

  // ---- RollingUpdate -------------------------------------------------------

  private async rolloutRolling(plan: Plan): Promise<void> {
    const { d } = plan;
    await this.ensureNewRS(plan, true);
    const newRS = plan.newRS as ReplicaSet;
    const desired = desiredReplicas(d);
    const { maxSurge, maxUnavailable } = surgeAndUnavailable(d);

    // Scale the new ReplicaSet up within the surge budget (or down to the desired count).
    const cur = specReplicas(newRS);
    let target = cur;
    if (cur > desired) target = desired;
    else if (cur < desired) {
      const room = desired + maxSurge - sumSpec([...plan.old, newRS]);
      if (room > 0) target = cur + Math.min(room, desired - cur);
    }
    if (target !== cur) { plan.newRS = await this.scale(d, newRS, target); return; }

    // Scale old ReplicaSets down, keeping at least desired - maxUnavailable pods available.
    if (sumSpec(plan.old) > 0) {
      const minAvailable = desired - maxUnavailable;
      const newUnavailable = specReplicas(newRS) - (newRS.status?.availableReplicas ?? 0);
      const maxScaleDown = sumSpec([...plan.old, newRS]) - minAvailable - newUnavailable;
      if (maxScaleDown <= 0) return;
      let scaled = 0;
      // Unhealthy old pods first: removing them costs no availability.
      for (let i = 0; i < plan.old.length && scaled < maxScaleDown; i++) {
        const rs = plan.old[i];
        const unhealthy = specReplicas(rs) - (rs.status?.availableReplicas ?? 0);
        if (specReplicas(rs) === 0 || unhealthy <= 0) continue;
        const n = Math.min(maxScaleDown - scaled, unhealthy);
        plan.old[i] = await this.scale(d, rs, specReplicas(rs) - n);
        scaled += n;
      }
      // Then healthy ones, as far as availability allows.
      const available = sumStatus([...plan.old, newRS], 'availableReplicas');
      let budget = Math.min(available - minAvailable, maxScaleDown - scaled);
      for (let i = 0; i < plan.old.length && budget > 0; i++) {
        const rs = plan.old[i];
        if (specReplicas(rs) === 0) continue;
        const n = Math.min(specReplicas(rs), budget);
        plan.old[i] = await this.scale(d, rs, specReplicas(rs) - n);
        budget -= n;
      }
      return;
    }
    await this.cleanupIfComplete(plan);
  }

  // ---- Recreate -------------------------------------------------------------

  private async rolloutRecreate(plan: Plan): Promise<void> {
    const { d } = plan;
    const active = plan.old.filter((rs) => specReplicas(rs) > 0);
    if (active.length) {
      for (const rs of active) plan.old[plan.old.indexOf(rs)] = await this.scale(d, rs, 0);
      return;
    }
    if (this.oldPodsRunning(plan.old)) return;
    await this.ensureNewRS(plan, true);
    const newRS = plan.newRS as ReplicaSet;
    if (specReplicas(newRS) !== desiredReplicas(d)) { plan.newRS = await this.scale(d, newRS, desiredReplicas(d)); return; }
    await this.cleanupIfComplete(plan);
  }

  private oldPodsRunning(old: ReplicaSet[]): boolean {
    if (old.some((rs) => (rs.status?.replicas ?? 0) > 0)) return true;
    const uids = new Set(old.map((rs) => rs.metadata.uid));
    return this.podInformer.list().some((p) => {
      const ref = controllerRefOf(p);
      return !!ref && uids.has(ref.uid) && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed';
    });
  }

  // ---- ReplicaSets ------------------------------------------------------------

  /** Finds or creates the ReplicaSet of the current template and keeps its annotations current. */
  private async ensureNewRS(plan: Plan, create: boolean): Promise<void> {
    const { d } = plan;
    const revision = String(Math.max(0, ...plan.old.map(revisionOf)) + 1);
    if (plan.newRS) {
      const rs = plan.newRS;
      const ann = rs.metadata.annotations ?? {};
      // A rollback (the template of an old ReplicaSet again) re-uses that ReplicaSet under
      // the next revision, remembering the revisions it held before for `rollout history`.
      const bump = revisionOf(rs) < Number(revision);
      const want: Record<string, string> = { ...ann, ...copyableAnnotations(d) };
      if (bump) {
        want[REVISION_ANNOTATION] = revision;
        const oldRev = ann[REVISION_ANNOTATION];
        if (oldRev) want[REVISION_HISTORY_ANNOTATION] = ann[REVISION_HISTORY_ANNOTATION] ? `${ann[REVISION_HISTORY_ANNOTATION]},${oldRev}` : oldRev;
      }
      const minReady = d.spec.minReadySeconds;
      if (stableStringify(want) !== stableStringify(ann) || rs.spec.minReadySeconds !== minReady) {
        plan.newRS = await this.client.update(R.replicaSets, {
          ...rs,
          metadata: { ...rs.metadata, annotations: want },
          spec: { ...rs.spec, minReadySeconds: minReady },
        });
      }
      await this.setDeploymentRevision(d, plan.newRS.metadata.annotations?.[REVISION_ANNOTATION]);
      return;
    }
    if (!create) return;
    const hash = podTemplateHash(d.spec.template, collisionCount(d));
    const t = structuredClone(d.spec.template);
    t.metadata = { ...(t.metadata ?? {}), labels: { ...(t.metadata?.labels ?? {}), [TEMPLATE_HASH_LABEL]: hash } };
    const replicas = this.initialReplicas(d, plan.old);
    const { maxSurge } = surgeAndUnavailable(d);
    const rs: ReplicaSet = {
      metadata: {
        name: `${d.metadata.name}-${hash}`,
        namespace: d.metadata.namespace,
        labels: { ...(t.metadata.labels ?? {}) },
        annotations: {
          ...copyableAnnotations(d),
          [REVISION_ANNOTATION]: revision,
          [DESIRED_REPLICAS_ANNOTATION]: String(desiredReplicas(d)),
          [MAX_REPLICAS_ANNOTATION]: String(desiredReplicas(d) + maxSurge),
        },
        ownerReferences: [newControllerRef(d, 'apps/v1', 'Deployment')],
      },
      spec: {
        replicas,
        minReadySeconds: d.spec.minReadySeconds,
        selector: {
          ...d.spec.selector,
          matchLabels: { ...(d.spec.selector.matchLabels ?? {}), [TEMPLATE_HASH_LABEL]: hash },
        },
        template: t,
      },
    };
    try {
      plan.newRS = await this.client.create(R.replicaSets, rs);
      plan.createdNewRS = true;
      if (replicas > 0) this.recorder?.event(referenceTo(d, R.deployments), 'Normal', 'ScalingReplicaSet', `Scaled up replica set ${rs.metadata.name} from 0 to ${replicas}`);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      const existing = await this.client.get<ReplicaSet>(R.replicaSets, rs.metadata.name as string, rs.metadata.namespace);
      if (isControlledBy(existing, d) && templatesEqual(existing.spec.template, d.spec.template)) {
        plan.newRS = existing;
      } else {
        // A name collision with a different template: bump collisionCount so the hash changes.
        await this.client.updateStatus(R.deployments, { ...d, status: { ...(d.status ?? {}), collisionCount: collisionCount(d) + 1 } });
        throw new Error(`deployment ${keyOf(d)}: replicaset ${rs.metadata.name} exists with another template; collisionCount bumped`);
      }
    }
    await this.setDeploymentRevision(d, revision);
  }

  private initialReplicas(d: Deployment, old: ReplicaSet[]): number {
    const desired = desiredReplicas(d);
    if (isRecreate(d)) return desired;
    const { maxSurge } = surgeAndUnavailable(d);
    const room = desired + maxSurge - sumSpec(old);
    return Math.max(0, Math.min(room, desired));
  }

  private async setDeploymentRevision(d: Deployment, revision: string | undefined): Promise<void> {
    if (!revision || d.metadata.annotations?.[REVISION_ANNOTATION] === revision) return;
    await this.client.patch(R.deployments, d.metadata.name as string, d.metadata.namespace,
      { metadata: { annotations: { [REVISION_ANNOTATION]: revision } } }, 'merge');
  }

  private async scale(d: Deployment, rs: ReplicaSet, replicas: number): Promise<ReplicaSet> {
    const { maxSurge } = surgeAndUnavailable(d);
    const from = specReplicas(rs);
    const scaled = await this.client.update(R.replicaSets, {
      ...rs,
      metadata: {
        ...rs.metadata,
        annotations: {
          ...(rs.metadata.annotations ?? {}),
          [DESIRED_REPLICAS_ANNOTATION]: String(desiredReplicas(d)),
          [MAX_REPLICAS_ANNOTATION]: String(desiredReplicas(d) + maxSurge),
        },
      },
      spec: { ...rs.spec, replicas },
    });
    if (from !== replicas) {
      this.recorder?.event(referenceTo(d, R.deployments), 'Normal', 'ScalingReplicaSet',
        `Scaled ${replicas > from ? 'up' : 'down'} replica set ${rs.metadata.name} to ${replicas} from ${from}`);
    }
    return scaled;
  }

  /** Once the rollout is complete, old ReplicaSets beyond revisionHistoryLimit are deleted. */
  private async cleanupIfComplete(plan: Plan): Promise<void> {
    const { d } = plan;
    const limit = d.spec.revisionHistoryLimit ?? DEFAULT_REVISION_HISTORY_LIMIT;
    // Oldest revision first (a rolled-back-to ReplicaSet is old by age but new by revision).
    const idle = plan.old.filter((rs) => specReplicas(rs) === 0 && (rs.status?.replicas ?? 0) === 0)
      .sort((a, b) => revisionOf(a) - revisionOf(b) || byCreation(a, b));
    for (const rs of idle.slice(0, Math.max(0, idle.length - limit))) {
      try { await this.client.delete(R.replicaSets, rs.metadata.name as string, rs.metadata.namespace); } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }

  // ---- status -----------------------------------------------------------------

  private async syncStatus(key: string, plan: Plan): Promise<void> {
    const { d } = plan;
    const all = plan.newRS ? [...plan.old, plan.newRS] : plan.old;
    const status = calculateStatus({ d, all, newRS: plan.newRS, createdNewRS: plan.createdNewRS });
    if (stableStringify(status) !== stableStringify(d.status ?? {})) {
      try {
        await this.client.updateStatus(R.deployments, { ...d, status });
      } catch (e) {
        if (isNotFound(e)) return;
        throw e;
      }
    }
    const wait = msUntilDeadline(d, status);
    if (wait !== undefined && !isComplete(d, status)) this.queue.addAfter(key, wait + 100);
  }
}

function collisionCount(d: Deployment): number {
  const c = (d.status as { collisionCount?: number } | undefined)?.collisionCount;
  return typeof c === 'number' ? c : 0;
}
