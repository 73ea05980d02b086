// CDS: EDS clusters per service port and DestinationRule subset, the clusters routes point
// at that have no service behind them, the passthrough clusters, and the proxy's inbound
// clusters (the app on loopback).
import type { PushContext } from '../../model/push-context.js';
import type { Proxy } from '../../model/proxy.js';
import { proxyClusterNames } from './outbound.js';
import { BLACKHOLE_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER, PASSTHROUGH_CLUSTER, inboundClusterName, parseOutboundClusterName } from './names.js';
import { sidecarScope, type SidecarScope } from '../../model/sidecar-scope.js';
import { serviceEntryClusterShape } from './service-entry.js';
import { ADS_CONFIG_SOURCE, socketAddress, type Cluster } from './envoy.js';
import { DEFAULT_CONNECT_TIMEOUT, applyTrafficPolicy, clusterTrafficPolicy } from './traffic-policy.js';
import { applyUpstreamTls } from '../../security/outbound.js';
import { applyUpstreamProtocol } from './upstream-protocol.js';

export { DEFAULT_CONNECT_TIMEOUT };

/** An EDS cluster with the DestinationRule policy that applies to it (Istio defaults when none). */
export function outboundCluster(push: PushContext, name: string, namespace?: string): Cluster {
  const cluster: Cluster = { name, type: 'EDS', edsClusterConfig: { edsConfig: ADS_CONFIG_SOURCE }, lbPolicy: 'LEAST_REQUEST', connectTimeout: DEFAULT_CONNECT_TIMEOUT };
  const policy = clusterTrafficPolicy(push, name, namespace);
  const parsed = parseOutboundClusterName(name);
  const protocol = parsed ? push.service(parsed.fqdn)?.ports.find((p) => p.port === parsed.port)?.appProtocol : undefined;
  const withProtocol = applyUpstreamProtocol(applyTrafficPolicy(cluster, policy), protocol, policy?.connectionPool?.http);
  const withPolicy = applyUpstreamTls(push, withProtocol, namespace);
  // ServiceEntry hosts resolved by DNS or not at all are not EDS clusters.
  const entry = serviceEntryClusterShape(push, name);
  if (!entry) return withPolicy;
  const shaped: Cluster = { ...withPolicy, ...entry };
  if (!shaped.edsClusterConfig) delete shaped.edsClusterConfig;
  return shaped;
}

export function generateOutboundClusters(push: PushContext, namespace?: string, scope?: SidecarScope): Cluster[] {
  const clusters = proxyClusterNames(push, scope, namespace).map((n) => outboundCluster(push, n, namespace));
  clusters.push({ name: PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED', connectTimeout: DEFAULT_CONNECT_TIMEOUT });
  if (scope?.outboundPolicy === 'REGISTRY_ONLY') clusters.push(blackHoleCluster());
  return clusters;
}

/** Istio's cluster with no endpoints, for traffic the outbound policy refuses. */
export function blackHoleCluster(): Cluster {
  return { name: BLACKHOLE_CLUSTER, type: 'STATIC', lbPolicy: 'ROUND_ROBIN', connectTimeout: DEFAULT_CONNECT_TIMEOUT, loadAssignment: { clusterName: BLACKHOLE_CLUSTER, endpoints: [] } };
}

export function generateInboundClusters(proxy: Pick<Proxy, 'inbound'>): Cluster[] {
  const clusters: Cluster[] = proxy.inbound.map(({ port, protocol }) => {
    const name = inboundClusterName(port);
    return applyUpstreamProtocol({
      name, type: 'STATIC', lbPolicy: 'ROUND_ROBIN', connectTimeout: DEFAULT_CONNECT_TIMEOUT,
      loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints: [{ endpoint: { address: socketAddress('127.0.0.1', port) } }] }] },
    }, protocol, undefined);
  });
  clusters.push({ name: INBOUND_PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED', connectTimeout: DEFAULT_CONNECT_TIMEOUT });
  return clusters;
}

export function generateClusters(push: PushContext, proxy: Pick<Proxy, 'inbound' | 'namespace'> & Partial<Pick<Proxy, 'workload' | 'labels'>>): Cluster[] {
  return [...generateOutboundClusters(push, proxy.namespace, sidecarScope(push, proxy)), ...generateInboundClusters(proxy)];
}
