// The xDS Node this proxy presents: Istio's id format and metadata, so pilot can tell
// which workload is asking.

export interface ProxyIdentity {
  podName: string;
  namespace: string;
  instanceIp: string;
  serviceAccount: string;
  workloadName: string;
  labels: Record<string, string>;
  domain: string;
}

/** google.protobuf.Value in proto-loader's object form. */
export type StructValue =
  | { nullValue: 'NULL_VALUE' }
  | { stringValue: string }
  | { numberValue: number }
  | { boolValue: boolean }
  | { structValue: { fields: Record<string, StructValue> } }
  | { listValue: { values: StructValue[] } };

export function toStructValue(v: unknown): StructValue {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toStructValue) } };
  return { structValue: toStruct(v as Record<string, unknown>) };
}

export function toStruct(o: Record<string, unknown>): { fields: Record<string, StructValue> } {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(o)) fields[k] = toStructValue(v);
  return { fields };
}

export function nodeId(id: ProxyIdentity): string {
  return `sidecar~${id.instanceIp}~${id.podName}.${id.namespace}~${id.namespace}.svc.${id.domain}`;
}

export interface XdsNode {
  id: string;
  cluster: string;
  metadata: { fields: Record<string, StructValue> };
  userAgentName: string;
  userAgentVersion: string;
}

export const PROXY_VERSION = '0.1.0';

export function buildNode(id: ProxyIdentity): XdsNode {
  return {
    id: nodeId(id),
    cluster: `${id.workloadName}.${id.namespace}`,
    metadata: toStruct({
      NAME: id.podName,
      NAMESPACE: id.namespace,
      WORKLOAD_NAME: id.workloadName,
      SERVICE_ACCOUNT: id.serviceAccount,
      LABELS: id.labels,
      INSTANCE_IPS: id.instanceIp,
      CLUSTER_ID: 'Kubernetes',
      ISTIO_VERSION: PROXY_VERSION,
    }),
    userAgentName: 'trellis-proxy',
    userAgentVersion: PROXY_VERSION,
  };
}
