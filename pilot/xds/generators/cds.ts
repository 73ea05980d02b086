// CDS: EDS clusters per service port and DestinationRule subset, the clusters routes point
// at that have no service behind them, the passthrough clusters, and the proxy's inbound
// clusters (the app on loopback).
import type { PushContext } from '../../model/push-context.js';
import type { Proxy } from '../../model/proxy.js';
import { danglingClusterNames, serviceClusterNames } from './outbound.js';
import { INBOUND_PASSTHROUGH_CLUSTER, PASSTHROUGH_CLUSTER, inboundClusterName } from './names.js';
import { ADS_CONFIG_SOURCE, socketAddress, type Cluster } from './envoy.js';
import { DEFAULT_CONNECT_TIMEOUT, applyTrafficPolicy, clusterTrafficPolicy } from './traffic-policy.js';
import { applyUpstreamTls } from '../../security/outbound.js';

export { DEFAULT_CONNECT_TIMEOUT };

/** An EDS cluster with the DestinationRule policy that applies to it (Istio defaults when none). */
export function outboundCluster(push: PushContext, name: string, namespace?: string): Cluster {
  const cluster: Cluster = { name, type: 'EDS', edsClusterConfig: { edsConfig: ADS_CONFIG_SOURCE }, lbPolicy: 'LEAST_REQUEST', connectTimeout: DEFAULT_CONNECT_TIMEOUT };
  return applyUpstreamTls(push, applyTrafficPolicy(cluster, clusterTrafficPolicy(push, name, namespace)), namespace);
}

export function generateOutboundClusters(push: PushContext, namespace?: string): Cluster[] {
  const clusters = [...serviceClusterNames(push), ...danglingClusterNames(push)].map((n) => outboundCluster(push, n, namespace));
  clusters.push({ name: PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED', connectTimeout: DEFAULT_CONNECT_TIMEOUT });
  return clusters;
}

export function generateInboundClusters(proxy: Pick<Proxy, 'inbound'>): Cluster[] {
  const clusters: Cluster[] = proxy.inbound.map(({ port }) => {
    const name = inboundClusterName(port);
    return {
      name, type: 'STATIC', lbPolicy: 'ROUND_ROBIN', connectTimeout: DEFAULT_CONNECT_TIMEOUT,
      loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints: [{ endpoint: { address: socketAddress('127.0.0.1', port) } }] }] },
    };
  });
  clusters.push({ name: INBOUND_PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED', connectTimeout: DEFAULT_CONNECT_TIMEOUT });
  return clusters;
}

export function generateClusters(push: PushContext, proxy: Pick<Proxy, 'inbound' | 'namespace'>): Cluster[] {
  return [...generateOutboundClusters(push, proxy.namespace), ...generateInboundClusters(proxy)];
}
