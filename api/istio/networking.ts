// networking.istio.io VirtualService and DestinationRule, as written in YAML (camelCase).
// Partial on purpose: the fields Trellis reads are typed, the rest passes through.
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
}

export interface HTTPRouteDestination { destination: Destination; weight?: number; headers?: Headers }

export interface HTTPRetry { attempts?: number; perTryTimeout?: string; retryOn?: string }
export interface HTTPRewrite { uri?: string; authority?: string }
export interface HTTPDirectResponse { status: number; body?: { string?: string; bytes?: string } }

export interface HTTPRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  route?: HTTPRouteDestination[];
  redirect?: Record<string, unknown>;
  directResponse?: HTTPDirectResponse;
  delegate?: { name?: string; namespace?: string };
  rewrite?: HTTPRewrite;
  /** Duration, e.g. "1.5s"; default disabled. */
  timeout?: string;
  retries?: HTTPRetry;
  fault?: Record<string, unknown>;
  mirror?: Destination;
  corsPolicy?: Record<string, unknown>;
  headers?: Headers;
}

export interface VirtualServiceSpec {
  hosts?: string[];
  /** Absent means ["mesh"]: the rules apply to all sidecars. */
  gateways?: string[];
  http?: HTTPRoute[];
  tls?: unknown[];
  tcp?: unknown[];
  exportTo?: string[];
}

export interface VirtualService extends KubeObject { spec: VirtualServiceSpec }

export interface LoadBalancerSettings { simple?: 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST'; consistentHash?: Record<string, unknown> }

export interface ConnectionPoolSettings {
  tcp?: { maxConnections?: number; connectTimeout?: string; idleTimeout?: string };
  http?: { http1MaxPendingRequests?: number; http2MaxRequests?: number; maxRequestsPerConnection?: number; maxRetries?: number; idleTimeout?: string };
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: Record<string, unknown>;
  tls?: { mode?: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL'; sni?: string };
  portLevelSettings?: (Omit<TrafficPolicy, 'portLevelSettings'> & { port?: PortSelector })[];
}

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
