// CDS: EDS clusters per service port and DestinationRule subset, the clusters routes point
// at that have no service behind them, the passthrough clusters, and the proxy's inbound
// clusters (the app on loopback).
import type { TrafficPolicy } from '../../../api/istio/index.js';
import type { PushContext } from '../../model/push-context.js';
import type { Proxy } from '../../model/proxy.js';
import { danglingClusterNames, serviceClusterNames } from './outbound.js';
import { INBOUND_PASSTHROUGH_CLUSTER, PASSTHROUGH_CLUSTER, inboundClusterName, parseOutboundClusterName } from './names.js';
import { ADS_CONFIG_SOURCE, parseDuration, socketAddress, type Cluster, type Duration } from './envoy.js';

export const DEFAULT_CONNECT_TIMEOUT: Duration = { seconds: 10 };

const LB_POLICY: Record<string, string> = {
  ROUND_ROBIN: 'ROUND_ROBIN', RANDOM: 'RANDOM', LEAST_REQUEST: 'LEAST_REQUEST', LEAST_CONN: 'LEAST_REQUEST',
};

export function outboundCluster(name: string, policy: TrafficPolicy | undefined): Cluster {
  return {
    name,
    type: 'EDS',
    edsClusterConfig: { edsConfig: ADS_CONFIG_SOURCE },
    lbPolicy: LB_POLICY[policy?.loadBalancer?.simple ?? ''] ?? 'ROUND_ROBIN',
    connectTimeout: parseDuration(policy?.connectionPool?.tcp?.connectTimeout) ?? DEFAULT_CONNECT_TIMEOUT,
  };
}

/** The DestinationRule policy for a cluster: the subset's own policy replaces the rule's. */
function trafficPolicyFor(push: PushContext, clusterName: string): TrafficPolicy | undefined {
  const parsed = parseOutboundClusterName(clusterName);
  if (!parsed) return undefined;
  const dr = push.destinationRuleFor(parsed.fqdn);
  const base = dr?.trafficPolicy;
  const sub = parsed.subset ? dr?.subsets.get(parsed.subset)?.trafficPolicy : undefined;
  return sub ? { ...base, ...sub } : base;
}

export function generateOutboundClusters(push: PushContext): Cluster[] {
  const clusters = serviceClusterNames(push).map((n) => outboundCluster(n, trafficPolicyFor(push, n)));
  for (const n of danglingClusterNames(push)) clusters.push(outboundCluster(n, undefined));
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

export function generateClusters(push: PushContext, proxy: Pick<Proxy, 'inbound'>): Cluster[] {
  return [...generateOutboundClusters(push), ...generateInboundClusters(proxy)];
}
