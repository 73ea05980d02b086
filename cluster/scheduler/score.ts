// Scoring (kube-scheduler's NodeResourcesFit LeastAllocated): prefer the node with the
// most cpu and memory left after placing the pod. Pods without requests count as a
// small default so empty pods still spread.
import type { Node, Pod } from '../../api/kube/index.js';
import { intolerablePreferNoSchedule, preferredAffinityWeight } from './predicates.js';
import { addResources, nodeAllocatable, type Resources } from './resources.js';
import { topologySpreadScores, type Placement } from './spread.js';

/** kube-scheduler's default score plugin weights. */
export const SCORE_WEIGHTS = { leastAllocated: 1, nodeAffinity: 2, taintToleration: 3, podTopologySpread: 2 };

const DEFAULT_MILLI_CPU = 100;
const DEFAULT_MEMORY = 200 * 1024 * 1024;

export function nonZeroRequests(r: Resources): Resources {
  return { ...r, cpu: r.cpu || DEFAULT_MILLI_CPU, memory: r.memory || DEFAULT_MEMORY };
}

/** 0..100, higher is better; usedNonZero sums nonZeroRequests of the node's pods. */
export function leastAllocatedScore(requests: Resources, node: Node, usedNonZero: Resources): number {
  const alloc = nodeAllocatable(node);
  const after = addResources(usedNonZero, nonZeroRequests(requests));
  let total = 0; let n = 0;
  for (const k of ['cpu', 'memory']) {
    const cap = alloc[k];
    if (!cap) continue;
    total += Math.max(0, ((cap - (after[k] ?? 0)) * 100) / cap);
    n++;
  }
  return n ? total / n : 50;
}

/** Scales raw scores to 0..100 by the largest (reverse: fewer is better), as kube-scheduler's DefaultNormalizeScore. */
function normalize(raw: Map<string, number>, reverse: boolean): Map<string, number> {
  const max = Math.max(0, ...raw.values());
  const out = new Map<string, number>();
  for (const [k, v] of raw) {
    const s = max === 0 ? (reverse ? 100 : 0) : (100 * v) / max;
    out.set(k, reverse ? 100 - s : s);
  }
  return out;
}

/** Weighted sum of every score plugin for each feasible node. */
export function scoreNodes(pod: Pod, requests: Resources, feasible: readonly Node[], placement: Placement, usedNonZero: (node: string) => Resources): Map<string, number> {
  const name = (n: Node): string => n.metadata.name ?? '';
  const affinity = normalize(new Map(feasible.map((n) => [name(n), preferredAffinityWeight(pod, n)])), false);
  const taints = normalize(new Map(feasible.map((n) => [name(n), intolerablePreferNoSchedule(pod, n)])), true);
  const spread = topologySpreadScores(pod, feasible, placement);
  const out = new Map<string, number>();
  for (const n of feasible) {
    const k = name(n);
    out.set(k,
      SCORE_WEIGHTS.leastAllocated * leastAllocatedScore(requests, n, usedNonZero(k))
      + SCORE_WEIGHTS.nodeAffinity * (affinity.get(k) ?? 0)
      + SCORE_WEIGHTS.taintToleration * (taints.get(k) ?? 0)
      + SCORE_WEIGHTS.podTopologySpread * (spread.get(k) ?? 0));
  }
  return out;
}
