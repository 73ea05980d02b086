// Pure helpers of the Deployment controller: the pod-template hash, maxSurge/maxUnavailable
// resolution and the annotations Kubernetes tools (kubectl rollout) read.
import type { Deployment, PodTemplateSpec, ReplicaSet } from '../../api/kube/index.js';

export const TEMPLATE_HASH_LABEL = 'pod-template-hash';
export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
export const DESIRED_REPLICAS_ANNOTATION = 'deployment.kubernetes.io/desired-replicas';
export const MAX_REPLICAS_ANNOTATION = 'deployment.kubernetes.io/max-replicas';
export const REVISION_HISTORY_ANNOTATION = 'deployment.kubernetes.io/revision-history';

// Deployment annotations that stay on the Deployment (the rest, e.g. kubernetes.io/change-cause,
// are copied to its ReplicaSets so `kubectl rollout history` can show them per revision).
const NOT_COPIED = new Set([
  'kubectl.kubernetes.io/last-applied-configuration', REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION,
  DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, 'deprecated.deployment.rollback.to',
]);

export function copyableAnnotations(d: Deployment): Record<string, string> {
  return Object.fromEntries(Object.entries(d.metadata.annotations ?? {}).filter(([k]) => !NOT_COPIED.has(k)));
}

/**
 * Splits `total` over buckets in proportion to their current sizes (largest remainders get
 * the leftovers, ties to the later, i.e. newer, bucket). Sizes all zero: the last takes all.
 */
export function proportionalScale(sizes: number[], total: number): number[] {
  const sum = sizes.reduce((a, b) => a + b, 0);
  if (!sizes.length) return [];
  if (sum === 0) return sizes.map((_, i) => (i === sizes.length - 1 ? total : 0));
  const exact = sizes.map((s) => (s * total) / sum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => ({ i, frac: x - Math.floor(x) })).sort((a, b) => b.frac - a.frac || b.i - a.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) out[order[k].i]++;
  return out;
}

/**
 * JSON with object keys sorted, so equal templates hash equally whatever the key order. A
 * null field counts as unset, as in Kubernetes' Go types: kubectl sends templates with
 * `creationTimestamp: null` (e.g. `rollout undo`), which must equal the template without it.
 */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined && o[k] !== null).map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function fnv32a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) { h ^= b; h = Math.imul(h, 0x01000193) >>> 0; }
  return h >>> 0;
}

// Kubernetes' rand.SafeEncodeString alphabet: no vowels (no accidental words), no
// look-alike characters.
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** The template without the pod-template-hash label (the hash must not depend on itself). */
export function templateWithoutHash(t: PodTemplateSpec): PodTemplateSpec {
  const labels = { ...(t.metadata?.labels ?? {}) };
  delete labels[TEMPLATE_HASH_LABEL];
  return { ...t, metadata: { ...(t.metadata ?? {}), labels } };
}

/** A stable hash of the pod template (and collision count), encoded like Kubernetes'. */
export function podTemplateHash(t: PodTemplateSpec, collisionCount = 0): string {
  let input = stableStringify(templateWithoutHash(t));
  if (collisionCount) input += `#${collisionCount}`;
  return String(fnv32a(input)).split('').map((c) => SAFE_ALPHABET[c.charCodeAt(0) % SAFE_ALPHABET.length]).join('');
}

export function templatesEqual(a: PodTemplateSpec, b: PodTemplateSpec): boolean {
  return stableStringify(templateWithoutHash(a)) === stableStringify(templateWithoutHash(b));
}

/** An int-or-percent value against a total; percentages round up or down as asked. */
export function resolveIntOrPercent(v: number | string | undefined, total: number, roundUp: boolean, dflt: string): number {
  const val = v ?? dflt;
  if (typeof val === 'number') return val;
  const m = /^(\d+)%$/.exec(val);
  if (!m) {
    const n = Number(val);
    if (Number.isInteger(n)) return n;
    throw new Error(`invalid int-or-percent value ${JSON.stringify(val)}`);
  }
  const x = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}

export function desiredReplicas(d: Deployment): number { return d.spec.replicas ?? 1; }
export function isRecreate(d: Deployment): boolean { return d.spec.strategy?.type === 'Recreate'; }

/** maxSurge and maxUnavailable for a rolling update (never both zero, as Kubernetes). */
export function surgeAndUnavailable(d: Deployment): { maxSurge: number; maxUnavailable: number } {
  if (isRecreate(d)) return { maxSurge: 0, maxUnavailable: 0 };
  const replicas = desiredReplicas(d);
  const ru = d.spec.strategy?.rollingUpdate;
  const maxSurge = resolveIntOrPercent(ru?.maxSurge, replicas, true, '25%');
  let maxUnavailable = resolveIntOrPercent(ru?.maxUnavailable, replicas, false, '25%');
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { maxSurge, maxUnavailable: Math.min(maxUnavailable, replicas) };
}

export function revisionOf(rs: ReplicaSet): number {
  const v = Number(rs.metadata.annotations?.[REVISION_ANNOTATION] ?? '0');
  return Number.isFinite(v) ? v : 0;
}

export function specReplicas(rs: ReplicaSet): number { return rs.spec.replicas ?? 0; }

export function sumSpec(rss: ReplicaSet[]): number { return rss.reduce((n, rs) => n + specReplicas(rs), 0); }

export function sumStatus(rss: ReplicaSet[], field: 'replicas' | 'readyReplicas' | 'availableReplicas'): number {
  return rss.reduce((n, rs) => n + (rs.status?.[field] ?? 0), 0);
}

/** Oldest first, by creation time then name, as Kubernetes scales old ReplicaSets down. */
export function byCreation(a: ReplicaSet, b: ReplicaSet): number {
  const ta = Date.parse(a.metadata.creationTimestamp ?? '') || 0;
  const tb = Date.parse(b.metadata.creationTimestamp ?? '') || 0;
  return ta - tb || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');
}
