// Scoring (kube-scheduler's NodeResourcesFit LeastAllocated): prefer the node with the
// most cpu and memory left after placing the pod. Pods without requests count as a
// small default so empty pods still spread.
import type { Node } from '../../api/kube/index.js';
import { addResources, nodeAllocatable, type Resources } from './resources.js';

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
