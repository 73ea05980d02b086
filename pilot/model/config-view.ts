// The part of an input object that pilot's output can depend on. A status write (pilot's
// own VirtualService validationMessages, a LoadBalancer Service's ingress), a new
// resourceVersion, managedFields or an annotation nothing in pilot reads must neither
// trigger a snapshot nor count as a change of its kind (Istio ignores status-only and
// metadata-only updates of its config the same way).
import type { Pod } from '../../api/kube/index.js';

interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  deletionTimestamp?: string;
}
interface Obj { metadata?: Meta; [field: string]: unknown }

/** Annotations pilot may read: Istio's own (`*.istio.io/...`); tools' and users' are noise. */
const ISTIO_ANNOTATION = /(^|\.)istio\.io\//;

function istioAnnotations(a: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!a) return undefined;
  const out: Record<string, string> = {};
  for (const k of Object.keys(a).sort()) if (ISTIO_ANNOTATION.test(k)) out[k] = a[k];
  return Object.keys(out).length ? out : undefined;
}

/**
 * What pilot reads of an object: everything but its status and the server's bookkeeping
 * (resourceVersion, generation, managedFields, uid) and annotations outside Istio's.
 */
export function configView(o: Obj): unknown {
  const { metadata, status: _status, ...rest } = o as Obj & { status?: unknown };
  const m = metadata ?? {};
  return {
    ...rest,
    metadata: { name: m.name, namespace: m.namespace, labels: m.labels ?? {}, annotations: istioAnnotations(m.annotations), created: m.creationTimestamp, deleting: m.deletionTimestamp !== undefined },
  };
}

// Pods churn status (conditions, probes): only their labels, IP, phase and ports matter.
function podView(p: Pod): unknown {
  return {
    name: p.metadata.name, namespace: p.metadata.namespace, labels: p.metadata.labels ?? {},
    ip: p.status?.podIP, ips: p.status?.podIPs, phase: p.status?.phase, sa: p.spec.serviceAccountName,
    ports: p.spec.containers.map((c) => c.ports ?? []),
  };
}

/** The comparable view of an input object of a kind (ConfigInputs key). */
export function viewOf(kind: string, o: unknown): unknown {
  return kind === 'pods' ? podView(o as Pod) : configView(o as Obj);
}

/** Whether an update of an object of `kind` changed anything pilot reads. */
export function relevantChange(kind: string, before: unknown, after: unknown): boolean {
  return JSON.stringify(viewOf(kind, before)) !== JSON.stringify(viewOf(kind, after));
}
