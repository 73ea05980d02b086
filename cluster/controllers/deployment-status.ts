// Deployment status: counts summed over its ReplicaSets and the Available / Progressing
// conditions with Kubernetes' reasons, which `kubectl rollout status` reads.
import type { Deployment, DeploymentStatus, ReplicaSet } from '../../api/kube/index.js';
import { desiredReplicas, surgeAndUnavailable, sumSpec, sumStatus } from './deployment-util.js';

type Condition = NonNullable<DeploymentStatus['conditions']>[number];

export const DEFAULT_PROGRESS_DEADLINE_SECONDS = 600;

export interface StatusInput {
  d: Deployment;
  all: ReplicaSet[];
  newRS?: ReplicaSet;
  /** This sync created the new ReplicaSet. */
  createdNewRS: boolean;
  now?: Date;
}

export function calculateStatus({ d, all, newRS, createdNewRS, now = new Date() }: StatusInput): DeploymentStatus {
  const prev = d.status ?? {};
  const desired = desiredReplicas(d);
  const available = sumStatus(all, 'availableReplicas');
  const status: DeploymentStatus = {
    ...prev,
    observedGeneration: d.metadata.generation ?? 0,
    replicas: sumStatus(all, 'replicas'),
    updatedReplicas: newRS?.status?.replicas ?? 0,
    readyReplicas: sumStatus(all, 'readyReplicas'),
    availableReplicas: available,
    unavailableReplicas: Math.max(0, sumSpec(all) - available),
  };
  const ts = now.toISOString();
  let conds = [...(prev.conditions ?? [])];

  const { maxUnavailable } = surgeAndUnavailable(d);
  conds = available >= desired - maxUnavailable
    ? setCondition(conds, { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }, ts)
    : setCondition(conds, { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' }, ts);

  const rsName = newRS?.metadata.name ?? '';
  const current = conds.find((c) => c.type === 'Progressing');
  if (d.spec.paused) {
    conds = setCondition(conds, { type: 'Progressing', status: 'Unknown', reason: 'DeploymentPaused', message: 'Deployment is paused' }, ts);
  } else if (current?.reason === 'DeploymentPaused' && !createdNewRS && !isComplete(d, status)) {
    // As Kubernetes: resuming is recorded first; the next sync reports progress again.
    conds = setCondition(conds, { type: 'Progressing', status: 'Unknown', reason: 'DeploymentResumed', message: 'Deployment is resumed' }, ts);
  } else if (isComplete(d, status)) {
    conds = setCondition(conds, { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${rsName}" has successfully progressed.` }, ts);
  } else if (createdNewRS) {
    conds = setCondition(conds, { type: 'Progressing', status: 'True', reason: 'NewReplicaSetCreated', message: `Created new replica set "${rsName}"` }, ts, true);
  } else if (!current || current.reason === 'DeploymentPaused' || current.reason === 'DeploymentResumed' || hasProgressed(prev, status)) {
    conds = setCondition(conds, { type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated', message: `ReplicaSet "${rsName}" is progressing.` }, ts, true);
  } else if (timedOut(d, current, now)) {
    conds = setCondition(conds, { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: `ReplicaSet "${rsName}" has timed out progressing.` }, ts);
  }
  status.conditions = conds;
  return status;
}

export function isComplete(d: Deployment, s: DeploymentStatus): boolean {
  const desired = desiredReplicas(d);
  return s.updatedReplicas === desired && s.replicas === desired && s.availableReplicas === desired
    && (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0);
}

function hasProgressed(prev: DeploymentStatus, next: DeploymentStatus): boolean {
  return (next.updatedReplicas ?? 0) > (prev.updatedReplicas ?? 0)
    || (next.replicas ?? 0) < (prev.replicas ?? 0)
    || (next.readyReplicas ?? 0) > (prev.readyReplicas ?? 0)
    || (next.availableReplicas ?? 0) > (prev.availableReplicas ?? 0);
}

/** Milliseconds until the progress deadline passes, or undefined if no deadline is running. */
export function msUntilDeadline(d: Deployment, s: DeploymentStatus, now = new Date()): number | undefined {
  if (d.spec.paused || isComplete(d, s)) return undefined;
  const c = s.conditions?.find((x) => x.type === 'Progressing');
  if (!c || c.status !== 'True' || !c.lastUpdateTime) return undefined;
  const deadline = Date.parse(c.lastUpdateTime) + (d.spec.progressDeadlineSeconds ?? DEFAULT_PROGRESS_DEADLINE_SECONDS) * 1000;
  return Math.max(0, deadline - now.getTime());
}

function timedOut(d: Deployment, c: Condition, now: Date): boolean {
  if (c.reason === 'NewReplicaSetAvailable' || c.reason === 'ProgressDeadlineExceeded' || !c.lastUpdateTime) return false;
  const secs = d.spec.progressDeadlineSeconds ?? DEFAULT_PROGRESS_DEADLINE_SECONDS;
  return Date.parse(c.lastUpdateTime) + secs * 1000 < now.getTime();
}

/**
 * Sets a condition, keeping lastTransitionTime when the status is unchanged; an unchanged
 * status and reason is left alone unless `touch` asks to record fresh progress.
 */
function setCondition(conds: Condition[], c: Omit<Condition, 'lastUpdateTime' | 'lastTransitionTime'>, ts: string, touch = false): Condition[] {
  const cur = conds.find((x) => x.type === c.type);
  if (cur && cur.status === c.status && cur.reason === c.reason && cur.message === c.message && !touch) return conds;
  const next: Condition = {
    ...c,
    lastUpdateTime: ts,
    lastTransitionTime: cur && cur.status === c.status ? (cur.lastTransitionTime ?? ts) : ts,
  };
  return [...conds.filter((x) => x.type !== c.type), next];
}
