// networking.istio.io VirtualService and DestinationRule, as written in YAML (camelCase).
// The fields Trellis reads are typed; validation (pilot/validation) knows the full field set.
import type { KubeObject } from '../kube/types.js';

/** Exactly one of exact, prefix or regex (RE2). */
export interface StringMatch { exact?: string; prefix?: string; regex?: string }

export interface PortSelector { number?: number }

export interface Destination { host: string; subset?: string; port?: PortSelector }

export interface HeaderOperations { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] }
export interface Headers { request?: HeaderOperations; response?: HeaderOperations }

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  /** Keys lowercase; an empty StringMatch `{}` tests presence. */
  headers?: Record<string, StringMatch>;
  withoutHeaders?: Record<string, StringMatch>;
  queryParams?: Record<string, StringMatch>;
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  gateways?: string[];
  ignoreUriCase?: boolean;
  statPrefix?: string;
}

export interface HTTPRouteDestination { destination: Destination; weight?: number; headers?: Headers }

export interface HTTPRetry {
  attempts?: number;
  perTryTimeout?: string;
  retryOn?: string;
  retryRemoteLocalities?: boolean;
  retryIgnorePreviousHosts?: boolean;
  backoff?: string;
}
export interface HTTPRewrite { uri?: string; authority?: string; uriRegexRewrite?: { match?: string; rewrite?: string } }
export interface HTTPRedirect {
  uri?: string;
  authority?: string;
  port?: number;
  derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  scheme?: string;
  redirectCode?: number;
}
export interface HTTPDirectResponse { status: number; body?: { string?: string; bytes?: string } }
export interface Percent { value?: number }
export interface HTTPFaultInjection {
  delay?: { fixedDelay?: string; percentage?: Percent; percent?: number };
  abort?: { httpStatus?: number; grpcStatus?: string; percentage?: Percent };
}
export interface CorsPolicy {
  allowOrigins?: StringMatch[];
  /** Deprecated: exact origins. */
  allowOrigin?: string[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: string;
  allowCredentials?: boolean;
  unmatchedPreflights?: 'UNSPECIFIED' | 'FORWARD' | 'IGNORE';
}

export interface HTTPRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  route?: HTTPRouteDestination[];
  redirect?: HTTPRedirect;
  directResponse?: HTTPDirectResponse;
  delegate?: { name?: string; namespace?: string };
  rewrite?: HTTPRewrite;
  /** Duration, e.g. "1.5s"; default disabled. */
  timeout?: string;
  retries?: HTTPRetry;
  fault?: HTTPFaultInjection;
  mirror?: Destination;
  mirrorPercentage?: Percent;
  /** Deprecated integer percentage. */
  mirrorPercent?: number;
  mirrors?: { destination: Destination; percentage?: Percent }[];
  corsPolicy?: CorsPolicy;
  headers?: Headers;
}

export interface L4MatchAttributes {
  destinationSubnets?: string[];
  port?: number;
  sourceSubnet?: string;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  sourceNamespace?: string;
}
export interface RouteDestination { destination: Destination; weight?: number }
export interface TCPRoute { match?: L4MatchAttributes[]; route?: RouteDestination[] }

export interface VirtualServiceSpec {
  hosts?: string[];
  /** Absent means ["mesh"]: the rules apply to all sidecars. */
  gateways?: string[];
  http?: HTTPRoute[];
  tls?: unknown[];
  tcp?: TCPRoute[];
  exportTo?: string[];
}

export interface VirtualService extends KubeObject { spec: VirtualServiceSpec }

export interface ConsistentHashLB {
  httpHeaderName?: string;
  httpCookie?: { name: string; path?: string; ttl?: string };
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  ringHash?: { minimumRingSize?: number };
  maglev?: { tableSize?: number };
  /** Deprecated: ring size at this level. */
  minimumRingSize?: number;
}

export interface LoadBalancerSettings {
  simple?: 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';
  consistentHash?: ConsistentHashLB;
}

export interface ConnectionPoolSettings {
  tcp?: {
    maxConnections?: number; connectTimeout?: string; idleTimeout?: string; maxConnectionDuration?: string;
    tcpKeepalive?: { probes?: number; time?: string; interval?: string };
  };
  http?: {
    http1MaxPendingRequests?: number; http2MaxRequests?: number; maxRequestsPerConnection?: number;
    maxRetries?: number; idleTimeout?: string; h2UpgradePolicy?: string; useClientProtocol?: boolean;
    maxConcurrentStreams?: number;
  };
}

export interface OutlierDetection {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  /** Deprecated alias of consecutiveGatewayErrors (Istio maps it so). */
  consecutiveErrors?: number;
  splitExternalLocalOriginErrors?: boolean;
  consecutiveLocalOriginFailures?: number;
  interval?: string;
  baseEjectionTime?: string;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}

/** DestinationRule tls (Istio's ClientTLSSettings); file paths are read by the proxy. */
export interface ClientTLSSettings {
  mode?: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  sni?: string;
  subjectAltNames?: string[];
  caCertificates?: string;
  clientCertificate?: string;
  privateKey?: string;
  credentialName?: string;
  insecureSkipVerify?: boolean;
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
  portLevelSettings?: PortTrafficPolicy[];
}

export type PortTrafficPolicy = Omit<TrafficPolicy, 'portLevelSettings'> & { port?: PortSelector };

export interface Subset { name: string; labels?: Record<string, string>; trafficPolicy?: TrafficPolicy }

export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: Subset[];
  exportTo?: string[];
  workloadSelector?: { matchLabels?: Record<string, string> };
}

export interface DestinationRule extends KubeObject { spec: DestinationRuleSpec }

export const NETWORKING_GROUP = 'networking.istio.io';
/** Served versions in preference order (v1 first; v1beta1 on older installs). */
export const NETWORKING_VERSIONS = ['v1', 'v1beta1'] as const;
