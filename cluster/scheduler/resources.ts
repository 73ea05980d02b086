// What a pod asks for and what a node offers, in comparable numbers.
import type { Node, Pod } from '../../api/kube/index.js';
import { toAmount } from './quantity.js';

export type Resources = Record<string, number>; // cpu (millicores), memory (bytes), pods, ...

/**
 * A pod's effective requests: the sum over app containers, or the largest init container
 * when that is more (init containers run one at a time, before the app), plus one pod.
 */
export function podRequests(pod: Pod): Resources {
  const sum: Resources = {};
  pod.spec.containers.forEach((c, i) => {
    for (const [k, v] of Object.entries(c.resources?.requests ?? {})) sum[k] = (sum[k] ?? 0) + toAmount(k, v, `spec.containers[${i}].resources.requests.${k}`);
  });
  (pod.spec.initContainers ?? []).forEach((c, i) => {
    for (const [k, v] of Object.entries(c.resources?.requests ?? {})) {
      sum[k] = Math.max(sum[k] ?? 0, toAmount(k, v, `spec.initContainers[${i}].resources.requests.${k}`));
    }
  });
  sum.pods = 1;
  return sum;
}

/** Allocatable (or capacity) of a node; pods defaults to 110 as the kubelet's default. */
export function nodeAllocatable(node: Node): Resources {
  const src = node.status?.allocatable ?? node.status?.capacity ?? {};
  const out: Resources = {};
  for (const [k, v] of Object.entries(src)) {
    try { out[k] = toAmount(k, v); } catch { /* an unparseable quantity offers nothing we can count */ }
  }
  if (out.pods === undefined) out.pods = 110;
  return out;
}

export function addResources(a: Resources, b: Resources): Resources {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}
