// Filters (kube-scheduler's Filter plugins): each says why a node cannot run a pod, in the
// words kube-scheduler uses, or nothing when it can. A node's first failing filter is its
// reason, except resources, which list every shortfall.
import type { Node, Pod } from '../../api/kube/index.js';
import { addResources, nodeAllocatable, podRequests, type Resources } from './resources.js';
import { checkNodePorts } from './ports.js';
import { checkTopologySpread, type Placement } from './spread.js';

export interface Taint { key: string; value?: string; effect: string }
export interface Toleration { key?: string; operator?: string; value?: string; effect?: string }

interface NodeSelectorRequirement { key: string; operator: string; values?: string[] }
interface NodeSelectorTerm { matchExpressions?: NodeSelectorRequirement[]; matchFields?: NodeSelectorRequirement[] }
interface PreferredTerm { weight: number; preference: NodeSelectorTerm }
interface Affinity {
  nodeAffinity?: {
    requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms?: NodeSelectorTerm[] };
    preferredDuringSchedulingIgnoredDuringExecution?: PreferredTerm[];
  };
}

export const NOT_READY_TAINT: Taint = { key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' };
export const UNSCHEDULABLE_TAINT: Taint = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' };

export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  const op = t.operator ?? 'Equal';
  if (!t.key) return op === 'Exists';
  if (t.key !== taint.key) return false;
  return op === 'Exists' || (op === 'Equal' && (t.value ?? '') === (taint.value ?? ''));
}

export function isNodeReady(node: Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

function tolerations(pod: Pod): Toleration[] { return pod.spec.tolerations ?? []; }

export function checkUnschedulable(pod: Pod, node: Node): string | undefined {
  if (node.spec?.unschedulable && !tolerations(pod).some((t) => tolerates(t, UNSCHEDULABLE_TAINT))) return 'node(s) were unschedulable';
  return undefined;
}

/** NoSchedule / NoExecute taints must be tolerated; a node that is not Ready counts as tainted not-ready. */
export function checkTaints(pod: Pod, node: Node): string | undefined {
  const taints: Taint[] = [...(node.spec?.taints ?? [])];
  if (!isNodeReady(node)) taints.push(NOT_READY_TAINT);
  for (const taint of taints) {
    if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
    if (!tolerations(pod).some((t) => tolerates(t, taint))) return `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`;
  }
  return undefined;
}

/** Gt/Lt compare integers; a value that is not one matches nothing (as in Kubernetes). */
function integer(text: string | undefined): number | undefined {
  return text !== undefined && /^-?\d+$/.test(text) ? Number(text) : undefined;
}

function matchRequirement(r: NodeSelectorRequirement, values: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(values, r.key);
  const v = values[r.key];
  const vals = r.values ?? [];
  switch (r.operator) {
    case 'In': return has && vals.includes(v);
    case 'NotIn': return !has || !vals.includes(v);
    case 'Exists': return has;
    case 'DoesNotExist': return !has;
    case 'Gt': case 'Lt': {
      const a = has ? integer(v) : undefined;
      const b = vals.length === 1 ? integer(vals[0]) : undefined;
      if (a === undefined || b === undefined) return false;
      return r.operator === 'Gt' ? a > b : a < b;
    }
    default: return false;
  }
}

/** nodeSelector and required node affinity (terms ORed, requirements ANDed). */
export function checkNodeAffinity(pod: Pod, node: Node): string | undefined {
  const reason = "node(s) didn't match Pod's node affinity/selector";
  const labels = node.metadata.labels ?? {};
  for (const [k, v] of Object.entries(pod.spec.nodeSelector ?? {})) if (labels[k] !== v) return reason;
  const affinity = (pod.spec as { affinity?: Affinity }).affinity;
  const required = affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (!required) return undefined;
  const ok = (required.nodeSelectorTerms ?? []).some((term) => termMatches(term, node));
  return ok ? undefined : reason;
}

/** A node selector term: its requirements ANDed; an empty term matches nothing. */
function termMatches(term: NodeSelectorTerm, node: Node): boolean {
  const exprs = term.matchExpressions ?? [];
  const fexprs = term.matchFields ?? [];
  if (!exprs.length && !fexprs.length) return false;
  const fields = { 'metadata.name': node.metadata.name ?? '' };
  return exprs.every((r) => matchRequirement(r, node.metadata.labels ?? {})) && fexprs.every((r) => matchRequirement(r, fields));
}

/** NodeAffinity scoring before normalization: the summed weights of the preferred terms the node matches. */
export function preferredAffinityWeight(pod: Pod, node: Node): number {
  const preferred = (pod.spec as { affinity?: Affinity }).affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
  let sum = 0;
  for (const t of preferred) if (t.weight && termMatches(t.preference, node)) sum += t.weight;
  return sum;
}

/** TaintToleration scoring before normalization: PreferNoSchedule taints the pod does not tolerate. */
export function intolerablePreferNoSchedule(pod: Pod, node: Node): number {
  let n = 0;
  for (const taint of node.spec?.taints ?? []) {
    if (taint.effect === 'PreferNoSchedule' && !tolerations(pod).some((t) => tolerates(t, taint))) n++;
  }
  return n;
}

/** Requests against what is left of allocatable; returns every shortfall. */
export function checkResources(requests: Resources, node: Node, used: Resources): string[] {
  const alloc = nodeAllocatable(node);
  const after = addResources(used, requests);
  const out: string[] = [];
  for (const [k, want] of Object.entries(requests)) {
    if (want <= 0) continue;
    const have = alloc[k];
    if (have === undefined) {
      // A node that does not declare cpu or memory is not limited by it; other
      // (extended) resources it does not offer at all.
      if (k === 'cpu' || k === 'memory' || k === 'ephemeral-storage') continue;
      out.push(`Insufficient ${k}`);
      continue;
    }
    if ((after[k] ?? 0) > have) out.push(k === 'pods' ? 'Too many pods' : `Insufficient ${k}`);
  }
  return out;
}

/**
 * Every reason node cannot take pod (empty: it fits), in kube-scheduler's filter order:
 * NodeUnschedulable, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit,
 * PodTopologySpread. The first failing filter is the node's reason; resources list every
 * shortfall. Without a placement (the pods on each node), NodePorts and spreading are skipped.
 */
export function filterNode(pod: Pod, node: Node, used: Resources, placement?: Placement): string[] {
  for (const check of [checkUnschedulable, checkTaints, checkNodeAffinity]) {
    const r = check(pod, node);
    if (r) return [r];
  }
  if (placement) {
    const ports = checkNodePorts(pod, placement.podsOn(node.metadata.name ?? ''));
    if (ports) return [ports];
  }
  const short = checkResources(podRequests(pod), node, used);
  if (short.length) return short;
  const spread = placement ? checkTopologySpread(pod, node, placement) : undefined;
  return spread ? [spread] : [];
}

/** kube-scheduler's FitError text: "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) ...". */
export function fitErrorMessage(nodeCount: number, reasonsByNode: string[][]): string {
  if (nodeCount === 0) return 'no nodes available to schedule pods';
  const histogram = new Map<string, number>();
  for (const reasons of reasonsByNode) for (const r of reasons) histogram.set(r, (histogram.get(r) ?? 0) + 1);
  const parts = [...histogram].map(([r, n]) => `${n} ${r}`).sort();
  return `0/${nodeCount} nodes are available: ${parts.join(', ')}.`;
}
