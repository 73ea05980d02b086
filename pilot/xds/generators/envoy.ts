// Envoy v3 resources as plain proto3-JSON-like objects (camelCase), ready for packAny.
// Wrapper types (BoolValue, UInt32Value) are written `{ value }` and Durations
// `{ seconds, nanos }`, which is what protobufjs's fromObject expects.
import { TYPE_URL } from '../../../api/xds/protos.js';

export type Json = Record<string, unknown>;

export interface Duration { seconds: number; nanos?: number }

export interface SocketAddress { socketAddress: { address: string; portValue: number } }

export interface LbEndpoint { endpoint: { address: SocketAddress }; metadata?: { filterMetadata: Record<string, Json> } }

export interface ClusterLoadAssignment {
  clusterName: string;
  endpoints: { lbEndpoints: LbEndpoint[] }[];
}

export interface Cluster {
  name: string;
  type: 'EDS' | 'STATIC' | 'ORIGINAL_DST' | 'STRICT_DNS';
  connectTimeout: Duration;
  lbPolicy: string;
  edsClusterConfig?: Json;
  loadAssignment?: ClusterLoadAssignment;
  dnsLookupFamily?: 'V4_ONLY' | 'AUTO';
  ringHashLbConfig?: Json;
  maglevLbConfig?: Json;
  circuitBreakers?: { thresholds: Json[] };
  outlierDetection?: Json;
  commonLbConfig?: Json;
  upstreamConnectionOptions?: Json;
  typedExtensionProtocolOptions?: Record<string, Json>;
  transportSocket?: { name: string; typedConfig: Json };
  transportSocketMatches?: { name: string; match: Json; transportSocket: { name: string; typedConfig: Json } }[];
}

export interface HeaderMatcher {
  name: string;
  stringMatch?: Json;
  presentMatch?: boolean;
  invertMatch?: boolean;
}

export interface RouteMatch {
  prefix?: string;
  path?: string;
  safeRegex?: { regex: string };
  caseSensitive?: { value: boolean };
  headers?: HeaderMatcher[];
  queryParameters?: { name: string; stringMatch?: Json; presentMatch?: boolean }[];
}

export interface WeightedCluster { name: string; weight: { value: number }; requestHeadersToAdd?: HeaderValueOption[]; requestHeadersToRemove?: string[]; responseHeadersToAdd?: HeaderValueOption[]; responseHeadersToRemove?: string[] }

export interface RouteAction {
  cluster?: string;
  weightedClusters?: { clusters: WeightedCluster[] };
  timeout?: Duration;
  retryPolicy?: Json;
  prefixRewrite?: string;
  regexRewrite?: { pattern: { regex: string }; substitution: string };
  hostRewriteLiteral?: string;
  hashPolicy?: Json[];
  requestMirrorPolicies?: Json[];
}

export interface HeaderValueOption { header: { key: string; value: string }; appendAction: 'APPEND_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS_OR_ADD' }

export interface Route {
  name?: string;
  match: RouteMatch;
  route?: RouteAction;
  redirect?: Json;
  directResponse?: { status: number; body?: { inlineString: string } };
  requestHeadersToAdd?: HeaderValueOption[];
  requestHeadersToRemove?: string[];
  responseHeadersToAdd?: HeaderValueOption[];
  responseHeadersToRemove?: string[];
  typedPerFilterConfig?: Record<string, Json>;
}

export interface VirtualHost {
  name: string;
  domains: string[];
  routes: Route[];
  /** A gateway server's httpsRedirect: plaintext requests get a 301 to https. */
  requireTls?: 'ALL';
}

export interface RouteConfiguration { name: string; virtualHosts: VirtualHost[] }

export interface FilterChain {
  name?: string;
  filterChainMatch?: { destinationPort?: { value: number }; transportProtocol?: string; serverNames?: string[] };
  transportSocket?: { name: string; typedConfig: Json };
  filters: { name: string; typedConfig: Json }[];
}

export interface Listener {
  name: string;
  address: SocketAddress;
  trafficDirection?: 'INBOUND' | 'OUTBOUND';
  useOriginalDst?: { value: boolean };
  bindToPort?: { value: boolean };
  listenerFilters?: { name: string; typedConfig: Json }[];
  filterChains: FilterChain[];
}

export const ADS_CONFIG_SOURCE = { ads: {}, resourceApiVersion: 'V3' } as const;
export const HCM_FILTER = 'envoy.filters.network.http_connection_manager';
export const TCP_PROXY_FILTER = 'envoy.filters.network.tcp_proxy';
export const ORIGINAL_DST_FILTER = 'envoy.filters.listener.original_dst';
export const ORIGINAL_DST_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst';

export function socketAddress(address: string, portValue: number): SocketAddress {
  return { socketAddress: { address, portValue } };
}

export function routerFilter(): { name: string; typedConfig: Json } {
  return { name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } };
}

export function tcpProxy(cluster: string): { name: string; typedConfig: Json } {
  return { name: TCP_PROXY_FILTER, typedConfig: { '@type': TYPE_URL.tcpProxy, statPrefix: cluster, cluster } };
}

/** A TcpProxy over several clusters; TcpProxy weights are plain uint32 (no wrapper). */
export function weightedTcpProxy(statPrefix: string, clusters: { name: string; weight: number }[]): { name: string; typedConfig: Json } {
  return { name: TCP_PROXY_FILTER, typedConfig: { '@type': TYPE_URL.tcpProxy, statPrefix, weightedClusters: { clusters } } };
}

/** Istio percentages (a double, 0-100) as Envoy FractionalPercent per million, as Istio writes them. */
export function fractionalPercent(value: number): { numerator: number; denominator: 'MILLION' } {
  return { numerator: Math.round(Math.min(100, Math.max(0, value)) * 10_000), denominator: 'MILLION' };
}

/** "10s", "1.5s", "250ms", "2m", "1h" -> Duration; undefined when malformed. */
export function parseDuration(text: string | undefined): Duration | undefined {
  if (!text) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) return undefined;
  const scale = { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  const totalNanos = Math.round(Number(m[1]) * scale * 1e9);
  const seconds = Math.floor(totalNanos / 1e9);
  const nanos = totalNanos - seconds * 1e9;
  return nanos ? { seconds, nanos } : { seconds };
}
