/**
 * The slice of the Kubernetes core/v1 Service and Endpoints JSON shapes that node
 * networking reads. Structural, so the full api/kube types (or raw JSON) fit.
 */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
}

export interface ServicePort {
  name?: string;
  protocol?: string; // TCP (default), UDP, SCTP
  port: number;
  targetPort?: number | string;
  nodePort?: number; // NodePort and LoadBalancer services, allocated by the apiserver
}

export interface Service {
  metadata: ObjectMeta;
  spec?: {
    type?: string; // ClusterIP, NodePort, LoadBalancer, ExternalName
    clusterIP?: string; // "None" for headless
    clusterIPs?: string[];
    externalName?: string;
    ports?: ServicePort[];
    sessionAffinity?: string; // None (default) or ClientIP
    sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
    publishNotReadyAddresses?: boolean;
  };
  status?: unknown;
}

/** The slice of core/v1 Pod that cluster DNS reads (hostname/subdomain records). */
export interface Pod {
  metadata: ObjectMeta;
  spec?: { hostname?: string; subdomain?: string };
  status?: { podIP?: string; phase?: string; conditions?: { type: string; status: string }[] };
}

export interface EndpointAddress {
  ip: string;
  hostname?: string;
}

export interface EndpointPort {
  name?: string;
  port: number;
  protocol?: string;
}

export interface EndpointSubset {
  addresses?: EndpointAddress[];
  notReadyAddresses?: EndpointAddress[];
  ports?: EndpointPort[];
}

export interface Endpoints {
  metadata: ObjectMeta;
  subsets?: EndpointSubset[];
}

/** Controllers take whatever the caller holds: an array, a Map (e.g. an informer cache) or a plain object. */
export type Collection<T> = Iterable<T> | ReadonlyMap<string, T> | Readonly<Record<string, T>>;

export function toList<T>(c: Collection<T> | undefined): T[] {
  if (!c) return [];
  if (c instanceof Map) return [...(c as ReadonlyMap<string, T>).values()];
  if (typeof (c as Iterable<T>)[Symbol.iterator] === 'function') return [...(c as Iterable<T>)];
  return Object.values(c as Record<string, T>);
}

export function objectKey(meta: ObjectMeta): string {
  return `${meta.namespace ?? 'default'}/${meta.name ?? ''}`;
}

export function protocolOf(p: { protocol?: string }): string {
  return (p.protocol ?? 'TCP').toUpperCase();
}

/** The ready endpoint addresses and port for one service port, matched by port name and protocol. */
export function readyEndpointsFor(endpoints: Endpoints | undefined, portName: string, protocol: string): { ip: string; port: number; hostname?: string }[] {
  const out: { ip: string; port: number; hostname?: string }[] = [];
  const seen = new Set<string>();
  for (const subset of endpoints?.subsets ?? []) {
    const port = (subset.ports ?? []).find((p) => (p.name ?? '') === portName && protocolOf(p) === protocol);
    if (!port) continue;
    for (const a of subset.addresses ?? []) {
      const key = `${a.ip}:${port.port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ ip: a.ip, port: port.port, hostname: a.hostname });
    }
  }
  return out;
}

export function isHeadless(svc: Service): boolean {
  return svc.spec?.clusterIP === 'None';
}
