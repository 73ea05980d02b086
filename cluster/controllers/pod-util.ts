// Pod state as controllers see it: active, ready, available (ready for minReadySeconds).
import type { Pod } from '../../api/kube/index.js';

export function isPodActive(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed' && !pod.metadata.deletionTimestamp;
}

export function isPodReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

function readySince(pod: Pod): number | undefined {
  const c = pod.status?.conditions?.find((x) => x.type === 'Ready' && x.status === 'True');
  if (!c) return undefined;
  return c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : 0;
}

/** Ready for at least minReadySeconds (a missing transition time counts as long ago). */
export function isPodAvailable(pod: Pod, minReadySeconds: number, now = Date.now()): boolean {
  const since = readySince(pod);
  if (since === undefined) return false;
  if (minReadySeconds <= 0) return true;
  return Number.isNaN(since) || since + minReadySeconds * 1000 <= now;
}

/** Milliseconds until a ready pod becomes available, or undefined if that is not pending. */
export function msUntilAvailable(pod: Pod, minReadySeconds: number, now = Date.now()): number | undefined {
  const since = readySince(pod);
  if (since === undefined || minReadySeconds <= 0 || Number.isNaN(since)) return undefined;
  const left = since + minReadySeconds * 1000 - now;
  return left > 0 ? left : undefined;
}

function creationTime(pod: Pod): number {
  return pod.metadata.creationTimestamp ? Date.parse(pod.metadata.creationTimestamp) : 0;
}

const PHASE_RANK: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };

/**
 * Orders pods so that the ones cheapest to lose come first, as ReplicaSet scale-down does:
 * unscheduled before scheduled, pending before running, not ready before ready, and newer
 * before older.
 */
export function compareForDeletion(a: Pod, b: Pod): number {
  const sa = a.spec.nodeName ? 1 : 0; const sb = b.spec.nodeName ? 1 : 0;
  if (sa !== sb) return sa - sb;
  const pa = PHASE_RANK[a.status?.phase ?? 'Pending'] ?? 0; const pb = PHASE_RANK[b.status?.phase ?? 'Pending'] ?? 0;
  if (pa !== pb) return pa - pb;
  const ra = isPodReady(a) ? 1 : 0; const rb = isPodReady(b) ? 1 : 0;
  if (ra !== rb) return ra - rb;
  return creationTime(b) - creationTime(a);
}
