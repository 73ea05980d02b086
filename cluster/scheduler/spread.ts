// PodTopologySpread: spread matching pods over topology domains (here nodes by
// kubernetes.io/hostname, or any node label). DoNotSchedule constraints filter nodes whose
// skew would exceed maxSkew; ScheduleAnyway constraints, and the default constraints for pods
// of a controller (kube-scheduler's system defaults: hostname, maxSkew 3), score.
import { matchesSelector, type LabelSelector, type Node, type Pod } from '../../api/kube/index.js';
import { checkNodeAffinity } from './predicates.js';

export const SPREAD_REASON = "node(s) didn't match pod topology spread constraints";
export const SPREAD_MISSING_LABEL_REASON = "node(s) didn't match pod topology spread constraints (missing required label)";

export interface SpreadConstraint {
  maxSkew: number;
  topologyKey: string;
  whenUnsatisfiable: 'DoNotSchedule' | 'ScheduleAnyway';
  labelSelector?: LabelSelector;
  minDomains?: number;
  /** Default constraints select the pods of the same controller, not by labels. */
  ownerUID?: string;
}

/** The snapshot the spread plugins read: every node and the live pods bound (or assumed) to each. */
export interface Placement { nodes: readonly Node[]; podsOn(node: string): readonly Pod[] }

function isLive(p: Pod): boolean {
  return !p.metadata.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed';
}

function controllerUID(pod: Pod): string | undefined {
  const ref = pod.metadata.ownerReferences?.find((o) => o.controller);
  return ref && ['ReplicaSet', 'StatefulSet', 'ReplicationController'].includes(ref.kind) ? ref.uid : undefined;
}

/** The pod's constraints; without any, the system defaults for pods of a controller. */
export function spreadConstraints(pod: Pod): SpreadConstraint[] {
  const own = (pod.spec as { topologySpreadConstraints?: SpreadConstraint[] }).topologySpreadConstraints;
  if (own?.length) return own;
  const uid = controllerUID(pod);
  return uid ? [{ maxSkew: 3, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', ownerUID: uid }] : [];
}

function selects(c: SpreadConstraint, pod: Pod, other: Pod): boolean {
  if (other.metadata.namespace !== pod.metadata.namespace || !isLive(other)) return false;
  if (c.ownerUID) return controllerUID(other) === c.ownerUID;
  return c.labelSelector ? matchesSelector(c.labelSelector, other.metadata.labels ?? {}) : false;
}

/** Matching pods per domain, over the nodes the pod could go to by its node affinity (nodeAffinityPolicy Honor). */
function domainCounts(c: SpreadConstraint, pod: Pod, placement: Placement): Map<string, number> {
  const counts = new Map<string, number>();
  for (const node of placement.nodes) {
    const domain = node.metadata.labels?.[c.topologyKey];
    if (domain === undefined || checkNodeAffinity(pod, node)) continue;
    let n = counts.get(domain) ?? 0;
    for (const p of placement.podsOn(node.metadata.name ?? '')) if (selects(c, pod, p)) n++;
    counts.set(domain, n);
  }
  return counts;
}

/** Filter: every DoNotSchedule constraint must keep its skew within maxSkew on this node. */
export function checkTopologySpread(pod: Pod, node: Node, placement: Placement): string | undefined {
  for (const c of spreadConstraints(pod)) {
    if (c.whenUnsatisfiable !== 'DoNotSchedule') continue;
    const domain = node.metadata.labels?.[c.topologyKey];
    if (domain === undefined) return SPREAD_MISSING_LABEL_REASON;
    const counts = domainCounts(c, pod, placement);
    let min = counts.size ? Math.min(...counts.values()) : 0;
    if (c.minDomains && counts.size < c.minDomains) min = 0;
    const self = selects(c, pod, { ...pod, metadata: { ...pod.metadata, deletionTimestamp: undefined } }) ? 1 : 0;
    if ((counts.get(domain) ?? 0) + self - min > c.maxSkew) return SPREAD_REASON;
  }
  return undefined;
}

/**
 * Scores 0..100 for the feasible nodes (higher: fewer matching pods in the node's domain),
 * kube-scheduler's PodTopologySpread scoring: raw = sum of (matching pods + maxSkew - 1)
 * weighted by log(domains + 2), then inverted and normalized over the feasible nodes.
 */
export function topologySpreadScores(pod: Pod, feasible: readonly Node[], placement: Placement): Map<string, number> {
  const out = new Map<string, number>();
  const constraints = spreadConstraints(pod).filter((c) => c.whenUnsatisfiable === 'ScheduleAnyway');
  if (!constraints.length) { for (const n of feasible) out.set(n.metadata.name ?? '', 0); return out; }
  const raw = new Map<string, number>();
  for (const c of constraints) {
    const counts = domainCounts(c, pod, placement);
    const weight = Math.log(counts.size + 2);
    for (const node of feasible) {
      const domain = node.metadata.labels?.[c.topologyKey];
      if (domain === undefined) continue;
      const name = node.metadata.name ?? '';
      raw.set(name, (raw.get(name) ?? 0) + ((counts.get(domain) ?? 0) + c.maxSkew - 1) * weight);
    }
  }
  const values = [...raw.values()];
  const max = values.length ? Math.max(...values) : 0;
  const min = values.length ? Math.min(...values) : 0;
  for (const node of feasible) {
    const name = node.metadata.name ?? '';
    const r = raw.get(name);
    out.set(name, r === undefined ? 0 : max === 0 ? 100 : (100 * (max + min - r)) / max);
  }
  return out;
}
