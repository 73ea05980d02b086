// Derives Istio's standard metric labels from what the proxy knows about a request:
// its own workload, the direction, the cluster it chose and the Host header.
import net from 'node:net';
import type { ProxyIdentity } from '../xds/node.js';
import type { RequestLabels, TcpLabels } from './istio-metrics.js';

export type Direction = 'inbound' | 'outbound';

export interface DestinationService {
  service: string;
  name: string;
  namespace: string;
  subset: string;
}

const UNKNOWN = 'unknown';

/** outbound|<port>|<subset>|<fqdn> names the service and subset; anything else (passthrough) does not. */
export function serviceFromCluster(cluster: string | undefined): DestinationService | undefined {
  if (!cluster) return undefined;
  const parts = cluster.split('|');
  if (parts.length !== 4 || parts[0] !== 'outbound' || !parts[3]) return undefined;
  const [name, namespace] = parts[3].split('.');
  return { service: parts[3], name: name ?? UNKNOWN, namespace: namespace ?? UNKNOWN, subset: parts[2] };
}

/** For inbound, or for unknown clusters, the Host header is the best name of the destination. */
export function serviceFromHost(host: string | undefined, defaultNamespace: string): DestinationService {
  const bare = (host ?? '').replace(/:\d+$/, '');
  if (!bare) return { service: UNKNOWN, name: UNKNOWN, namespace: UNKNOWN, subset: '' };
  if (net.isIP(bare)) return { service: bare, name: bare, namespace: UNKNOWN, subset: '' };
  const [name, namespace] = bare.split('.');
  return { service: bare, name, namespace: namespace ?? defaultNamespace, subset: '' };
}

export interface LabelInput {
  direction: Direction;
  identity: ProxyIdentity;
  cluster?: string;
  host?: string;
  status: number;
  flags: string;
  /** Inbound: the downstream presented a verified client certificate (mTLS) with this URI. */
  peerPrincipal?: string;
  mtls?: boolean;
  /** This proxy's own URI: inbound destination_principal (mTLS), outbound source_principal. */
  localPrincipal?: string;
  /** Outbound: the upstream's verified URI SAN (destination_principal). */
  upstreamPrincipal?: string;
}

export function requestLabels(i: LabelInput): RequestLabels {
  const me = i.identity;
  const app = me.labels.app ?? me.workloadName;
  const version = me.labels.version ?? UNKNOWN;
  if (i.direction === 'outbound') {
    const dst = serviceFromCluster(i.cluster) ?? serviceFromHost(i.host, UNKNOWN);
    return {
      reporter: 'source',
      source_workload: me.workloadName, source_workload_namespace: me.namespace, source_app: app, source_version: version,
      source_principal: i.localPrincipal ?? UNKNOWN,
      destination_workload: UNKNOWN, destination_workload_namespace: dst.namespace, destination_app: UNKNOWN,
      destination_version: dst.subset || UNKNOWN, destination_principal: i.upstreamPrincipal ?? UNKNOWN,
      destination_service: dst.service, destination_service_name: dst.name, destination_service_namespace: dst.namespace,
      // Istio: the source cannot know the server's authentication policy, so it reports unknown.
      request_protocol: 'http', response_code: String(i.status), response_flags: i.flags || '-', connection_security_policy: UNKNOWN,
    };
  }
  const dst = serviceFromHost(i.host, me.namespace);
  return {
    reporter: 'destination',
    // Without mTLS peer metadata the caller is not known; with mTLS its certificate names it.
    source_workload: UNKNOWN, source_workload_namespace: UNKNOWN, source_app: UNKNOWN, source_version: UNKNOWN,
    source_principal: i.mtls && i.peerPrincipal ? i.peerPrincipal : UNKNOWN,
    destination_workload: me.workloadName, destination_workload_namespace: me.namespace, destination_app: app,
    destination_version: version, destination_principal: i.mtls && i.localPrincipal ? i.localPrincipal : UNKNOWN,
    destination_service: dst.service, destination_service_name: dst.name, destination_service_namespace: dst.namespace,
    request_protocol: 'http', response_code: String(i.status), response_flags: i.flags || '-', connection_security_policy: i.mtls ? 'mutual_tls' : 'none',
  };
}

/** The principals of a TCP connection, with the same meaning as for requests (LabelInput). */
export interface TcpPrincipals {
  mtls?: boolean;
  peerPrincipal?: string;
  localPrincipal?: string;
  upstreamPrincipal?: string;
}

export function tcpLabels(direction: Direction, identity: ProxyIdentity, cluster: string, target: string, flags: string, p: TcpPrincipals = {}): TcpLabels {
  const dst = serviceFromCluster(cluster) ?? serviceFromHost(target, UNKNOWN);
  const inbound = direction === 'inbound';
  const mtls = inbound && p.mtls === true;
  return {
    reporter: inbound ? 'destination' : 'source',
    source_workload: inbound ? UNKNOWN : identity.workloadName,
    source_workload_namespace: inbound ? UNKNOWN : identity.namespace,
    source_principal: (inbound ? (mtls ? p.peerPrincipal : undefined) : p.localPrincipal) ?? UNKNOWN,
    destination_workload: inbound ? identity.workloadName : UNKNOWN,
    destination_workload_namespace: inbound ? identity.namespace : dst.namespace,
    destination_principal: (inbound ? (mtls ? p.localPrincipal : undefined) : p.upstreamPrincipal) ?? UNKNOWN,
    destination_service: dst.service, destination_service_name: dst.name, destination_service_namespace: dst.namespace,
    response_flags: flags || '-', connection_security_policy: inbound ? (mtls ? 'mutual_tls' : 'none') : UNKNOWN,
  };
}
