// A connected proxy as pilot sees it: what its xDS node says about itself (Istio's node id
// `sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local` plus metadata), and the workload that
// node resolves to in a given snapshot.
import type { Pod } from '../../api/kube/index.js';
import type { PushContext, InboundPort, Workload } from './push-context.js';

export type ProxyType = 'sidecar' | 'router';

export interface ProxyNode {
  id: string;
  type: ProxyType;
  ip: string;
  podName: string;
  namespace: string;
  dnsDomain: string;
  /** Labels the node reported in metadata LABELS (used until the pod is in the snapshot). */
  labels: Readonly<Record<string, string>>;
  metadata: Readonly<Record<string, unknown>>;
}

export interface Proxy extends ProxyNode {
  pod?: Pod;
  workload: Workload;
  inbound: readonly InboundPort[];
}

/** Parses an Istio node id; errors name the part that is wrong. */
export function parseNodeId(id: string, metadata: Record<string, unknown> = {}): ProxyNode {
  const parts = id.split('~');
  if (parts.length !== 4) throw new Error(`node.id '${id}': want 4 parts separated by '~' (type~ip~pod.namespace~domain), got ${parts.length}`);
  const [type, ip, podDotNs, dnsDomain] = parts;
  if (type !== 'sidecar' && type !== 'router') throw new Error(`node.id '${id}': type '${type}' is not sidecar or router`);
  if (!ip) throw new Error(`node.id '${id}': ip is empty`);
  const metaNs = typeof metadata.NAMESPACE === 'string' ? metadata.NAMESPACE : undefined;
  // The domain part is `<ns>.svc.<cluster domain>`; the pod part is `<pod>.<ns>`, and pod
  // names may themselves contain dots, so the namespace is taken from the domain.
  const namespace = metaNs ?? dnsDomain.split('.')[0];
  if (!namespace) throw new Error(`node.id '${id}': no namespace in the domain part or metadata NAMESPACE`);
  const suffix = `.${namespace}`;
  const podName = podDotNs.endsWith(suffix) ? podDotNs.slice(0, -suffix.length) : podDotNs;
  if (!podName) throw new Error(`node.id '${id}': pod name is empty`);
  const rawLabels = metadata.LABELS;
  const labels: Record<string, string> = {};
  if (rawLabels && typeof rawLabels === 'object') {
    for (const [k, v] of Object.entries(rawLabels as Record<string, unknown>)) if (typeof v === 'string') labels[k] = v;
  }
  return { id, type, ip, podName, namespace, dnsDomain, labels, metadata };
}

/** The node resolved against a snapshot: its pod (by name, then IP) and the ports it serves. */
export function resolveProxy(node: ProxyNode, push: PushContext): Proxy {
  const byName = push.pod(node.namespace, node.podName);
  const pod = byName ?? push.podByIp(node.ip);
  const workload: Workload = { namespace: node.namespace, labels: pod?.metadata.labels ?? node.labels, pod };
  return { ...node, pod, workload, inbound: push.inboundPorts(workload) };
}
