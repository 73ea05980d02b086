// Listener: decode and validate, including the network filters (HttpConnectionManager,
// TcpProxy) and their route config references.
import { CORS_FILTER } from './cors.js';
import { TYPE_URL } from '../../../api/xds/protos.js';
import { arr, durationMs, FieldErrors, num, obj, str, socketAddress, wrapped, type HostPort, type Obj } from './fields.js';
import { compileRouteConfiguration, type RouteTable, type WeightedCluster } from './route.js';
import { decodeHttpFault, FAULT_FILTER, FAULT_TYPE, type FaultConfig } from './fault.js';
import { decodeFilterChainMatch, type FilterChainMatchSpec, type PrefixRange } from './filter-chain-match.js';
import { decodeDownstreamTls, decodeTransportSocket, type DownstreamTlsConfig } from './tls-context.js';
import { decodeXfcc, type XfccConfig } from './xfcc.js';
import { decodeRbac, HTTP_RBAC_FILTER, NETWORK_RBAC_FILTER, type RbacConfig } from './rbac.js';
import { contentHash } from './content-hash.js';
import { decodeAccessLogs } from './access-log.js';
import type { AccessLogger } from '../../stats/access-log.js';

export type { PrefixRange } from './filter-chain-match.js';

export interface HttpConnectionManagerConfig {
  kind: 'http';
  statPrefix: string;
  /** Name of the RouteConfiguration fetched by RDS, or the inline one. */
  rds?: string;
  routeConfig?: RouteTable;
  /** Present when envoy.filters.http.fault is in http_filters (its filter-level config). */
  fault?: FaultConfig;
  /** Downstream codec: AUTO detects HTTP/2 by its connection preface. */
  codecType: 'AUTO' | 'HTTP1' | 'HTTP2';
  /** forwardClientCertDetails / setCurrentClientCertDetails (x-forwarded-client-cert). */
  xfcc: XfccConfig;
  /** envoy.filters.http.rbac filters, in filter order (all run before the router). */
  rbac: RbacConfig[];
  /** The listener's per_connection_buffer_limit_bytes (Envoy's default 1 MiB): the retry/mirror copy of a body. */
  bufferLimitBytes: number;
  /** access_log: file/stdout loggers with their formats; empty: the proxy's default log line. */
  accessLogs: AccessLogger[];
}

export interface TcpProxyConfig {
  kind: 'tcp';
  statPrefix: string;
  cluster?: string;
  weightedClusters?: WeightedCluster[];
}

export type NetworkFilter = HttpConnectionManagerConfig | TcpProxyConfig;

export interface FilterChain {
  name: string;
  /** Same as match.destinationPort / match.prefixRanges (kept for readers of the old shape). */
  destinationPort?: number;
  prefixRanges: PrefixRange[];
  match: FilterChainMatchSpec;
  /** DownstreamTlsContext of the chain's transportSocket; absent: plaintext. */
  tls?: DownstreamTlsConfig;
  /** envoy.filters.network.rbac filters before the terminal filter, in order: run per connection. */
  networkRbac: RbacConfig[];
  filter: NetworkFilter;
  /**
   * A hash of the chain's whole config (canonical JSON of its resource): two chains with the
   * same hash are the same chain, whatever push or version brought them. Connections of a
   * chain whose hash is gone from the config are drained; the others are left alone.
   */
  configHash: string;
}

export type TrafficDirection = 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED';

export interface ListenerConfig {
  name: string;
  address: HostPort;
  bindToPort: boolean;
  /** Hand accepted connections to the listener matching their original destination. */
  useOriginalDst: boolean;
  /** Recover the original destination for filter chain matching (original_dst listener filter). */
  originalDstFilter: boolean;
  direction: TrafficDirection;
  /** tls_inspector / http_inspector in listenerFilters. */
  tlsInspector: boolean;
  httpInspector: boolean;
  /** listenerFiltersTimeout (0: none) and what happens when it fires. */
  listenerFiltersTimeoutMs: number;
  continueOnListenerFiltersTimeout: boolean;
  filterChains: FilterChain[];
  defaultFilterChain?: FilterChain;
  raw: Obj;
}

const HCM_NAME = 'envoy.filters.network.http_connection_manager';
const TCP_PROXY_NAME = 'envoy.filters.network.tcp_proxy';
const ROUTER_NAME = 'envoy.filters.http.router';
/** Envoy's per_connection_buffer_limit_bytes default. */
const DEFAULT_BUFFER_LIMIT_BYTES = 1024 * 1024;
const LISTENER_FILTERS: ReadonlySet<string> = new Set([
  'envoy.filters.listener.original_dst', 'envoy.filters.listener.tls_inspector', 'envoy.filters.listener.http_inspector',
]);

function typeOf(typedConfig: Obj | undefined): string | undefined {
  return str(typedConfig?.['@type']);
}

function decodeHcm(tc: Obj, field: string, errors: FieldErrors): HttpConnectionManagerConfig | undefined {
  const before = errors.list.length;
  const statPrefix = str(tc.statPrefix) ?? '';
  let rds: string | undefined;
  let routeConfig: RouteTable | undefined;
  const rdsCfg = obj(tc.rds);
  if (rdsCfg) {
    rds = str(rdsCfg.routeConfigName);
    if (!rds) errors.add(`${field}.rds.routeConfigName`, 'required');
    const source = obj(rdsCfg.configSource);
    if (!source || !obj(source.ads)) errors.add(`${field}.rds.configSource`, 'only ads config sources are supported');
  } else if (obj(tc.routeConfig)) {
    routeConfig = compileRouteConfiguration(obj(tc.routeConfig) ?? {}, errors, `${field}.routeConfig.`);
  } else {
    errors.add(field, 'one of rds, routeConfig is required');
  }
  const httpFilters = arr(tc.httpFilters).map((f) => obj(f) ?? {});
  if (httpFilters.length === 0 || str(httpFilters[httpFilters.length - 1].name) !== ROUTER_NAME) {
    errors.add(`${field}.httpFilters`, `the last filter must be ${ROUTER_NAME}`);
  }
  let fault: FaultConfig | undefined;
  const rbac: RbacConfig[] = [];
  httpFilters.forEach((f, i) => {
    const name = str(f.name) ?? '';
    const tc = obj(f.typedConfig);
    if (name === HTTP_RBAC_FILTER || typeOf(tc) === TYPE_URL.httpRbac) {
      const ff = `${field}.httpFilters[${i}].typedConfig`;
      if (typeOf(tc) !== TYPE_URL.httpRbac) errors.add(ff, `must be ${TYPE_URL.httpRbac}`);
      else { const r = decodeRbac(tc ?? {}, ff, errors); if (r) rbac.push(r); }
      return;
    }
    if (name === FAULT_FILTER || typeOf(tc) === FAULT_TYPE) {
      if (tc && typeOf(tc) !== FAULT_TYPE) errors.add(`${field}.httpFilters[${i}].typedConfig`, `must be ${FAULT_TYPE}`);
      else fault = decodeHttpFault(tc ?? {}, `${field}.httpFilters[${i}].typedConfig`, errors);
      return;
    }
    // CORS: the filter has no config of its own; policies come per route (cors-stage.ts).
    if (name === CORS_FILTER) return;
    // Optional filters may be skipped by a proxy that does not know them (Envoy's is_optional).
    if (name !== ROUTER_NAME && f.isOptional !== true) {
      errors.add(`${field}.httpFilters[${i}].name`, `"${name}" is not supported yet`);
    }
  });
  const codecRaw = str(tc.codecType) ?? 'AUTO';
  let codecType: HttpConnectionManagerConfig['codecType'] = 'AUTO';
  if (codecRaw === 'AUTO' || codecRaw === 'HTTP1' || codecRaw === 'HTTP2') codecType = codecRaw;
  else errors.add(`${field}.codecType`, `"${codecRaw}" is not supported (AUTO, HTTP1, HTTP2)`);
  const xfcc = decodeXfcc(tc, field, errors);
  const accessLogs = decodeAccessLogs(tc.accessLog, `${field}.accessLog`, errors);
  return errors.list.length === before ? { kind: 'http', statPrefix, rds, routeConfig, fault, codecType, xfcc, rbac, bufferLimitBytes: DEFAULT_BUFFER_LIMIT_BYTES, accessLogs } : undefined;
}

function decodeTcpProxy(tc: Obj, field: string, errors: FieldErrors): TcpProxyConfig | undefined {
  const statPrefix = str(tc.statPrefix) ?? '';
  if (typeof tc.cluster === 'string' && tc.cluster !== '') return { kind: 'tcp', statPrefix, cluster: tc.cluster };
  const wc = obj(tc.weightedClusters);
  if (wc) {
    const clusters: WeightedCluster[] = [];
    arr(wc.clusters).forEach((c, i) => {
      const co = obj(c) ?? {};
      const name = str(co.name);
      const weight = num(wrapped(co.weight)) ?? 0;
      if (!name) errors.add(`${field}.weightedClusters.clusters[${i}].name`, 'required');
      else clusters.push({ name, weight });
    });
    if (clusters.reduce((s, c) => s + c.weight, 0) <= 0) errors.add(`${field}.weightedClusters`, 'weights must sum to more than 0');
    return { kind: 'tcp', statPrefix, weightedClusters: clusters };
  }
  errors.add(field, 'one of cluster, weightedClusters is required');
  return undefined;
}

function decodeFilterChain(raw: Obj, field: string, errors: FieldErrors): FilterChain | undefined {
  const before = errors.list.length;
  const match = decodeFilterChainMatch(obj(raw.filterChainMatch) ?? {}, `${field}.filterChainMatch`, errors);
  let tls: DownstreamTlsConfig | undefined;
  const ts = obj(raw.transportSocket);
  if (ts) {
    const t = decodeTransportSocket(ts, `${field}.transportSocket`, errors, decodeDownstreamTls, TYPE_URL.downstreamTlsContext);
    if (t && t !== 'plaintext') tls = t;
  }

  const filters = arr(raw.filters).map((f) => obj(f) ?? {});
  if (filters.length === 0) errors.add(`${field}.filters`, 'must not be empty');
  let filter: NetworkFilter | undefined;
  const networkRbac: RbacConfig[] = [];
  filters.forEach((f, i) => {
    const ff = `${field}.filters[${i}]`;
    const name = str(f.name) ?? '';
    const tc = obj(f.typedConfig);
    const type = typeOf(tc);
    const last = i === filters.length - 1;
    if (name === HCM_NAME || type === TYPE_URL.httpConnectionManager) {
      if (type !== TYPE_URL.httpConnectionManager || !tc) errors.add(`${ff}.typedConfig`, `must be ${TYPE_URL.httpConnectionManager}`);
      else if (!last) errors.add(ff, 'http_connection_manager must be the last filter');
      else filter = decodeHcm(tc, `${ff}.typedConfig`, errors);
    } else if (name === TCP_PROXY_NAME || type === TYPE_URL.tcpProxy) {
      if (type !== TYPE_URL.tcpProxy || !tc) errors.add(`${ff}.typedConfig`, `must be ${TYPE_URL.tcpProxy}`);
      else if (!last) errors.add(ff, 'tcp_proxy must be the last filter');
      else filter = decodeTcpProxy(tc, `${ff}.typedConfig`, errors);
    } else if (name === NETWORK_RBAC_FILTER || type === TYPE_URL.networkRbac) {
      if (type !== TYPE_URL.networkRbac || !tc) errors.add(`${ff}.typedConfig`, `must be ${TYPE_URL.networkRbac}`);
      else { const r = decodeRbac(tc, `${ff}.typedConfig`, errors); if (r) networkRbac.push(r); }
    } else {
      errors.add(`${ff}.name`, `network filter "${name}" is not supported`);
    }
  });
  if (errors.list.length !== before || !filter) return undefined;
  return { name: str(raw.name) ?? '', destinationPort: match.destinationPort, prefixRanges: match.prefixRanges, match, tls, networkRbac, filter, configHash: contentHash(raw) };
}

export function decodeListener(raw: Obj): { name: string; value?: ListenerConfig; errors: string[] } {
  const name = str(raw.name) ?? '';
  const errors = new FieldErrors(`Listener "${name}"`);
  if (!name) errors.add('name', 'required');
  const address = socketAddress(raw.address, 'address', errors);
  const bindToPort = wrapped(raw.bindToPort) !== false;
  const useOriginalDst = wrapped(raw.useOriginalDst) === true;
  let originalDstFilter = useOriginalDst;
  let tlsInspector = false;
  let httpInspector = false;
  arr(raw.listenerFilters).forEach((f, i) => {
    const fname = str(obj(f)?.name) ?? '';
    if (!LISTENER_FILTERS.has(fname)) errors.add(`listenerFilters[${i}].name`, `listener filter "${fname}" is not supported`);
    if (fname === 'envoy.filters.listener.original_dst') originalDstFilter = true;
    if (fname === 'envoy.filters.listener.tls_inspector') tlsInspector = true;
    if (fname === 'envoy.filters.listener.http_inspector') httpInspector = true;
  });
  // Envoy's default is 15 s; 0 disables the timeout.
  let listenerFiltersTimeoutMs = 15_000;
  if (raw.listenerFiltersTimeout !== undefined) {
    const ms = durationMs(raw.listenerFiltersTimeout);
    if (ms === undefined || ms < 0) errors.add('listenerFiltersTimeout', 'must be a non-negative duration');
    else listenerFiltersTimeoutMs = ms;
  }
  const continueOnListenerFiltersTimeout = wrapped(raw.continueOnListenerFiltersTimeout) === true;
  const dirRaw = str(raw.trafficDirection) ?? 'UNSPECIFIED';
  const direction: TrafficDirection = dirRaw === 'INBOUND' || dirRaw === 'OUTBOUND' ? dirRaw : 'UNSPECIFIED';

  const filterChains: FilterChain[] = [];
  arr(raw.filterChains).forEach((fc, i) => {
    const chain = decodeFilterChain(obj(fc) ?? {}, `filterChains[${i}]`, errors);
    if (chain) filterChains.push(chain);
  });
  let defaultFilterChain: FilterChain | undefined;
  if (obj(raw.defaultFilterChain)) defaultFilterChain = decodeFilterChain(obj(raw.defaultFilterChain) ?? {}, 'defaultFilterChain', errors);
  if (arr(raw.filterChains).length === 0 && !obj(raw.defaultFilterChain)) errors.add('filterChains', 'must not be empty');
  if (raw.perConnectionBufferLimitBytes !== undefined) {
    const limit = num(wrapped(raw.perConnectionBufferLimitBytes));
    if (limit === undefined || !Number.isInteger(limit) || limit < 0 || limit > 0xffffffff) errors.add('perConnectionBufferLimitBytes', 'must be an unsigned 32-bit integer');
    else for (const c of [...filterChains, ...(defaultFilterChain ? [defaultFilterChain] : [])]) if (c.filter.kind === 'http') c.filter.bufferLimitBytes = limit;
  }

  if (!errors.ok || !address) return { name, errors: errors.list };
  return {
    name,
    value: {
      name, address, bindToPort, useOriginalDst, originalDstFilter, direction, tlsInspector, httpInspector,
      listenerFiltersTimeoutMs, continueOnListenerFiltersTimeout, filterChains, defaultFilterChain, raw,
    },
    errors: [],
  };
}

/** Route config names a listener's HTTP connection managers fetch over RDS. */
export function rdsNames(listener: ListenerConfig): string[] {
  const chains = listener.defaultFilterChain ? [...listener.filterChains, listener.defaultFilterChain] : listener.filterChains;
  return chains.flatMap((c) => (c.filter.kind === 'http' && c.filter.rds ? [c.filter.rds] : []));
}
