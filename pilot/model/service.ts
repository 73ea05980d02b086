// The service registry view of a snapshot: Services with their ports and the endpoints
// behind each port, every endpoint carrying its pod's labels (subsets select on them).
import type { Endpoints, Pod, Service } from '../../api/kube/index.js';
import { serviceFqdn } from './hosts.js';

/** Istio's application protocol of a service port (from appProtocol or the port name). */
export type PortProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'GRPC-WEB' | 'HTTPS' | 'TLS' | 'TCP' | 'MONGO' | 'MYSQL' | 'REDIS' | 'UDP' | 'UNKNOWN';

export interface ServicePortModel {
  name?: string;
  port: number;
  targetPort?: number | string;
  /** The Kubernetes L4 protocol (TCP, UDP, SCTP). */
  protocol: string;
  appProtocol: PortProtocol;
}

const PROTOCOL_NAMES: Record<string, PortProtocol> = {
  http: 'HTTP', http2: 'HTTP2', h2c: 'HTTP2', 'kubernetes.io/h2c': 'HTTP2', grpc: 'GRPC', 'grpc-web': 'GRPC-WEB',
  https: 'HTTPS', tls: 'TLS', tcp: 'TCP', mongo: 'MONGO', mysql: 'MYSQL', redis: 'REDIS',
  'kubernetes.io/ws': 'HTTP', 'kubernetes.io/wss': 'HTTPS',
};

/**
 * Istio's protocol selection: `appProtocol` first, then the port name (`<protocol>` or
 * `<protocol>-<suffix>`, e.g. `http-web`, `grpc`, `tcp-db`); anything else is UNKNOWN, which
 * Istio sniffs and Trellis (no sniffing yet) serves as HTTP.
 */
export function portProtocol(name: string | undefined, appProtocol: string | undefined, l4: string): PortProtocol {
  if (l4 === 'UDP' || l4 === 'SCTP') return 'UDP';
  const fromApp = appProtocol ? PROTOCOL_NAMES[appProtocol.toLowerCase()] : undefined;
  if (fromApp) return fromApp;
  const lower = (name ?? '').toLowerCase();
  if (lower.startsWith('grpc-web')) return 'GRPC-WEB';
  return PROTOCOL_NAMES[lower.split('-')[0]] ?? 'UNKNOWN';
}

/** Ports served through an HTTP connection manager (UNKNOWN included, see portProtocol). */
export function isHttpProtocol(p: PortProtocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-WEB' || p === 'UNKNOWN';
}

export interface EndpointModel {
  address: string;
  port: number;
  labels: Readonly<Record<string, string>>;
  podName?: string;
  namespace: string;
}

export interface ServiceModel {
  name: string;
  namespace: string;
  fqdn: string;
  /** Undefined for headless services. */
  clusterIP?: string;
  ports: readonly ServicePortModel[];
  selector?: Readonly<Record<string, string>>;
  /** Ready endpoints per service port number. */
  endpoints: ReadonlyMap<number, readonly EndpointModel[]>;
  /** Set for services that come from a ServiceEntry (pilot/model/service-entry.ts). */
  entry?: ServiceEntryInfo;
}

/** What a ServiceEntry adds to a service: how its endpoints are found and who sees it. */
export interface ServiceEntryInfo {
  resolution: 'NONE' | 'STATIC' | 'DNS';
  meshExternal: boolean;
  exportTo?: readonly string[];
}

export interface PodIndex {
  byKey: ReadonlyMap<string, Pod>;
  byIp: ReadonlyMap<string, Pod>;
}

export function indexPods(pods: readonly Pod[]): PodIndex {
  const byKey = new Map<string, Pod>();
  const byIp = new Map<string, Pod>();
  for (const pod of pods) {
    byKey.set(`${pod.metadata.namespace}/${pod.metadata.name}`, pod);
    // Finished pods give their IPs back; a new pod may already hold the same address.
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    const ips = new Set<string>();
    if (pod.status?.podIP) ips.add(pod.status.podIP);
    for (const p of pod.status?.podIPs ?? []) ips.add(p.ip);
    for (const ip of ips) byIp.set(ip, pod);
  }
  return { byKey, byIp };
}

/** Builds the model of one Service; undefined for kinds with no clusters (ExternalName). */
export function buildService(svc: Service, eps: Endpoints | undefined, pods: PodIndex, domain: string): ServiceModel | undefined {
  const name = svc.metadata.name ?? '';
  const namespace = svc.metadata.namespace ?? 'default';
  if (svc.spec.type === 'ExternalName') return undefined;
  const ports: ServicePortModel[] = (svc.spec.ports ?? []).map((p) => ({
    name: p.name || undefined, port: p.port, targetPort: p.targetPort, protocol: p.protocol ?? 'TCP',
    appProtocol: portProtocol(p.name, p.appProtocol, p.protocol ?? 'TCP'),
  }));
  const endpoints = new Map<number, EndpointModel[]>();
  for (const sp of ports) endpoints.set(sp.port, endpointsForPort(sp, eps, pods, namespace));
  const ip = svc.spec.clusterIP;
  return {
    name, namespace, fqdn: serviceFqdn(name, namespace, domain),
    clusterIP: ip && ip !== 'None' ? ip : undefined,
    ports, selector: svc.spec.selector, endpoints,
  };
}

// The endpoints controller names each endpoint port after its service port, so the
// service port's name finds its target port number in every subset.
function endpointsForPort(sp: ServicePortModel, eps: Endpoints | undefined, pods: PodIndex, namespace: string): EndpointModel[] {
  const out: EndpointModel[] = [];
  for (const subset of eps?.subsets ?? []) {
    const epPort = (subset.ports ?? []).find((p) => (p.name ?? '') === (sp.name ?? ''));
    if (!epPort) continue;
    for (const addr of subset.addresses ?? []) {
      const ref = addr.targetRef?.kind === 'Pod' ? addr.targetRef : undefined;
      const pod = ref ? pods.byKey.get(`${ref.namespace ?? namespace}/${ref.name}`) : pods.byIp.get(addr.ip);
      out.push({
        address: addr.ip, port: epPort.port, labels: pod?.metadata.labels ?? {},
        podName: pod?.metadata.name ?? ref?.name, namespace: pod?.metadata.namespace ?? namespace,
      });
    }
  }
  out.sort((a, b) => (a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1));
  return out;
}

/** The numeric container port a service port targets on a given pod (named ports looked up). */
export function resolveTargetPort(sp: ServicePortModel, pod: Pod | undefined): number | undefined {
  const t = sp.targetPort;
  if (t === undefined || t === '') return sp.port;
  if (typeof t === 'number') return t;
  if (/^\d+$/.test(t)) return Number(t);
  for (const c of pod?.spec.containers ?? []) {
    const found = c.ports?.find((p) => p.name === t);
    if (found) return found.containerPort;
  }
  return undefined;
}
