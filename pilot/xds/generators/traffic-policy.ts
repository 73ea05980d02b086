// DestinationRule trafficPolicy -> Envoy cluster settings, with Istio's merge order
// (pilot/pkg/networking/core/cluster_traffic_policy.go): the rule's policy, replaced as a
// whole by its portLevelSettings for the port; then each part the subset sets; then the
// subset's portLevelSettings. Port-level settings do not inherit: unset parts get defaults.
import type { ConsistentHashLB, PortTrafficPolicy, TrafficPolicy } from '../../../api/istio/index.js';
import type { PushContext } from '../../model/push-context.js';
import { parseOutboundClusterName } from './names.js';
import { parseDuration, type Cluster, type Duration, type Json } from './envoy.js';
import { TYPE_URL } from '../../../api/xds/protos.js';

export const DEFAULT_CONNECT_TIMEOUT: Duration = { seconds: 10 };
const MAX_UINT32 = 4294967295;

type Parts = Omit<TrafficPolicy, 'portLevelSettings'>;

function portLevel(policy: TrafficPolicy | undefined, port: number): PortTrafficPolicy | undefined {
  return policy?.portLevelSettings?.find((p) => p.port?.number === port);
}

function parts(p: Parts | undefined): Parts {
  return { loadBalancer: p?.loadBalancer, connectionPool: p?.connectionPool, outlierDetection: p?.outlierDetection, tls: p?.tls };
}

/** The effective policy of `outbound|port|subset|host` from a rule's policy and its subset's. */
export function mergeTrafficPolicy(top: TrafficPolicy | undefined, subset: TrafficPolicy | undefined, port: number): Parts | undefined {
  if (!top && !subset) return undefined;
  const topPort = portLevel(top, port);
  const merged: Parts = topPort ? parts(topPort) : parts(top);
  if (subset) {
    if (subset.loadBalancer) merged.loadBalancer = subset.loadBalancer;
    if (subset.connectionPool) merged.connectionPool = subset.connectionPool;
    if (subset.outlierDetection) merged.outlierDetection = subset.outlierDetection;
    if (subset.tls) merged.tls = subset.tls;
    const subPort = portLevel(subset, port);
    if (subPort) Object.assign(merged, parts(subPort));
  }
  return merged;
}

/** The policy for an outbound cluster name as seen from a proxy namespace. */
export function clusterTrafficPolicy(push: PushContext, clusterName: string, namespace?: string): Parts | undefined {
  const parsed = parseOutboundClusterName(clusterName);
  if (!parsed) return undefined;
  const dr = push.destinationRuleFor(parsed.fqdn, namespace);
  if (!dr) return undefined;
  const sub = parsed.subset ? dr.subsets.get(parsed.subset)?.trafficPolicy : undefined;
  return mergeTrafficPolicy(dr.trafficPolicy, sub, parsed.port);
}

const LB_POLICY: Record<string, string> = {
  ROUND_ROBIN: 'ROUND_ROBIN', RANDOM: 'RANDOM', LEAST_REQUEST: 'LEAST_REQUEST', LEAST_CONN: 'LEAST_REQUEST',
};

/** Applies a policy to an EDS cluster (mutates and returns it). */
export function applyTrafficPolicy(cluster: Cluster, policy: Parts | undefined): Cluster {
  const lb = policy?.loadBalancer;
  // Istio's default (UNSPECIFIED or no rule) is LEAST_REQUEST.
  cluster.lbPolicy = LB_POLICY[lb?.simple ?? ''] ?? 'LEAST_REQUEST';
  if (lb?.simple === 'PASSTHROUGH') {
    cluster.type = 'ORIGINAL_DST';
    cluster.lbPolicy = 'CLUSTER_PROVIDED';
    delete cluster.edsClusterConfig;
  } else if (lb?.consistentHash) {
    const ch = lb.consistentHash;
    if (ch.maglev) {
      cluster.lbPolicy = 'MAGLEV';
      cluster.maglevLbConfig = { tableSize: { value: ch.maglev.tableSize ?? 65537 } };
    } else {
      cluster.lbPolicy = 'RING_HASH';
      cluster.ringHashLbConfig = { minimumRingSize: { value: ch.ringHash?.minimumRingSize ?? ch.minimumRingSize ?? 1024 } };
    }
  }
  const tcp = policy?.connectionPool?.tcp;
  const http = policy?.connectionPool?.http;
  cluster.connectTimeout = parseDuration(tcp?.connectTimeout) ?? DEFAULT_CONNECT_TIMEOUT;
  // Istio writes its own defaults (2^32-1) so Envoy's (1024) never apply.
  cluster.circuitBreakers = {
    thresholds: [{
      maxConnections: { value: tcp?.maxConnections ?? MAX_UINT32 },
      maxPendingRequests: { value: http?.http1MaxPendingRequests ?? MAX_UINT32 },
      maxRequests: { value: http?.http2MaxRequests ?? MAX_UINT32 },
      maxRetries: { value: http?.maxRetries ?? MAX_UINT32 },
      trackRemaining: true,
    }],
  };
  const common: Json = {};
  const idle = parseDuration(http?.idleTimeout ?? tcp?.idleTimeout);
  if (idle) common.idleTimeout = idle;
  if (http?.maxRequestsPerConnection) common.maxRequestsPerConnection = { value: http.maxRequestsPerConnection };
  const maxDuration = parseDuration(tcp?.maxConnectionDuration);
  if (maxDuration) common.maxConnectionDuration = maxDuration;
  if (Object.keys(common).length) {
    cluster.typedExtensionProtocolOptions = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': TYPE_URL.httpProtocolOptions, commonHttpProtocolOptions: common, useDownstreamProtocolConfig: {},
      },
    };
  }
  if (tcp?.tcpKeepalive) {
    const ka: Json = {};
    if (tcp.tcpKeepalive.probes) ka.keepaliveProbes = { value: tcp.tcpKeepalive.probes };
    const t = parseDuration(tcp.tcpKeepalive.time);
    if (t) ka.keepaliveTime = { value: t.seconds };
    const iv = parseDuration(tcp.tcpKeepalive.interval);
    if (iv) ka.keepaliveInterval = { value: iv.seconds };
    cluster.upstreamConnectionOptions = { tcpKeepalive: ka };
  }
  const od = policy?.outlierDetection;
  if (od) {
    const out: Json = { enforcingSuccessRate: { value: 0 } };
    const c5 = od.consecutive5xxErrors;
    if (c5 !== undefined) {
      out.consecutive5xx = { value: c5 };
      out.enforcingConsecutive5xx = { value: c5 > 0 ? 100 : 0 };
    }
    const gw = od.consecutiveGatewayErrors ?? od.consecutiveErrors;
    if (gw !== undefined) {
      out.consecutiveGatewayFailure = { value: gw };
      out.enforcingConsecutiveGatewayFailure = { value: gw > 0 ? 100 : 0 };
    }
    if (od.splitExternalLocalOriginErrors) {
      out.splitExternalLocalOriginErrors = true;
      out.consecutiveLocalOriginFailure = { value: od.consecutiveLocalOriginFailures ?? 5 };
    }
    const interval = parseDuration(od.interval);
    if (interval) out.interval = interval;
    const base = parseDuration(od.baseEjectionTime);
    if (base) out.baseEjectionTime = base;
    if (od.maxEjectionPercent !== undefined) out.maxEjectionPercent = { value: od.maxEjectionPercent };
    cluster.outlierDetection = out;
    // Istio's minHealthPercent (default 0) is Envoy's panic threshold: 0 disables panic mode.
    cluster.commonLbConfig = { healthyPanicThreshold: { value: od.minHealthPercent ?? 0 } };
  }
  return cluster;
}

/** Route hash policy for a consistent-hash destination (Istio's hash key choice). */
export function hashPolicy(ch: ConsistentHashLB | undefined): Json[] | undefined {
  if (!ch) return undefined;
  if (ch.httpHeaderName) return [{ header: { headerName: ch.httpHeaderName } }];
  if (ch.httpCookie) {
    const cookie: Json = { name: ch.httpCookie.name };
    if (ch.httpCookie.path) cookie.path = ch.httpCookie.path;
    const ttl = parseDuration(ch.httpCookie.ttl);
    if (ttl) cookie.ttl = ttl;
    return [{ cookie }];
  }
  if (ch.useSourceIp) return [{ connectionProperties: { sourceIp: true } }];
  if (ch.httpQueryParameterName) return [{ queryParameter: { name: ch.httpQueryParameterName } }];
  return undefined;
}
