// Cluster: decode and validate. Only what the skeleton routes with is interpreted;
// unsupported discovery types are rejected so the control plane hears about it.
import { FieldErrors, arr, durationMs, obj, str, type Obj } from './fields.js';
import { compileLoadAssignment, type Endpoint } from './endpoint.js';
import {
  decodeCircuitBreakers, decodeLbSettings, decodeOutlierDetection, type CircuitBreakerLimits, type LbSettings, type OutlierDetectionConfig,
} from './cluster-policies.js';
import { decodeUpstreamTransport, type UpstreamTransport } from './upstream-transport.js';
import { decodeConnectionOptions, decodeDnsSettings, type ConnectionOptions, type DnsSettings } from './connection-options.js';

export type DiscoveryType = 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'EDS' | 'ORIGINAL_DST';
export type LbPolicy = 'ROUND_ROBIN' | 'RANDOM' | 'LEAST_REQUEST' | 'RING_HASH';

export interface ClusterConfig {
  name: string;
  type: DiscoveryType;
  /** The ClusterLoadAssignment name an EDS cluster waits for. */
  edsServiceName?: string;
  /** Endpoints of STATIC / DNS clusters (from the inline loadAssignment). */
  staticEndpoints: Endpoint[];
  lbPolicy: LbPolicy;
  connectTimeoutMs: number;
  circuitBreakers: CircuitBreakerLimits;
  outlierDetection?: OutlierDetectionConfig;
  lb: LbSettings;
  /** HTTP version towards the endpoints: http1, http2 (h2c / prior knowledge) or the downstream's. */
  upstreamProtocol: UpstreamProtocol;
  /** Upstream connection idle timeout and requests per connection. */
  connection: ConnectionOptions;
  /** transportSocket / transportSocketMatches (upstream TLS). */
  transport?: UpstreamTransport;
  /** STRICT_DNS / LOGICAL_DNS: how and how often the endpoints' hostnames are resolved. */
  dns?: DnsSettings;
  /**
   * The hosts of a DNS cluster as last resolved (undefined until the first resolution: the
   * cluster warms). Written by the cluster manager's resolver, like Envoy's priority set.
   */
  dnsHosts?: { endpoints?: Endpoint[] };
  raw: Obj;
}

export type UpstreamProtocol = 'http1' | 'http2' | 'downstream';

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** Reads typedExtensionProtocolOptions[HttpProtocolOptions] (and the deprecated http2ProtocolOptions). */
function decodeUpstreamProtocol(raw: Obj, errors: FieldErrors): UpstreamProtocol {
  const opts = obj(obj(raw.typedExtensionProtocolOptions)?.[HTTP_PROTOCOL_OPTIONS]);
  const field = `typedExtensionProtocolOptions["${HTTP_PROTOCOL_OPTIONS}"]`;
  if (opts) {
    const explicit = obj(opts.explicitHttpConfig);
    if (explicit) {
      if (obj(explicit.http2ProtocolOptions)) return 'http2';
      if (obj(explicit.http3ProtocolOptions)) errors.add(`${field}.explicitHttpConfig`, 'http3 is not supported');
      return 'http1';
    }
    if (obj(opts.useDownstreamProtocolConfig)) return 'downstream';
    if (obj(opts.autoConfig)) return 'http1'; // auto needs ALPN over TLS; plaintext falls back to HTTP/1.1 as Envoy does
    return 'http1';
  }
  if (obj(raw.http2ProtocolOptions)) return 'http2';
  return 'http1';
}

const TYPES: ReadonlySet<string> = new Set(['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST']);
const LB_POLICIES: ReadonlySet<string> = new Set(['ROUND_ROBIN', 'RANDOM', 'LEAST_REQUEST', 'RING_HASH']);
// ORIGINAL_DST clusters must say CLUSTER_PROVIDED (or the older ORIGINAL_DST_LB).
const ORIGINAL_DST_LB: ReadonlySet<string> = new Set(['CLUSTER_PROVIDED', 'ORIGINAL_DST_LB']);

export function decodeCluster(raw: Obj): { name: string; value?: ClusterConfig; errors: string[] } {
  const name = str(raw.name) ?? '';
  const errors = new FieldErrors(`Cluster "${name}"`);
  if (!name) errors.add('name', 'required');

  const type = str(raw.type) ?? 'STATIC';
  if (raw.clusterType !== undefined) errors.add('clusterType', 'custom cluster types are not supported');
  if (!TYPES.has(type)) errors.add('type', `"${type}" is not supported (STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST)`);

  const lbRaw = str(raw.lbPolicy) ?? 'ROUND_ROBIN';
  let lbPolicy: LbPolicy = 'ROUND_ROBIN';
  if (type === 'ORIGINAL_DST') {
    if (raw.lbPolicy !== undefined && !ORIGINAL_DST_LB.has(lbRaw) && lbRaw !== 'ROUND_ROBIN') {
      errors.add('lbPolicy', `"${lbRaw}" is not valid for an ORIGINAL_DST cluster (CLUSTER_PROVIDED)`);
    }
  } else if (LB_POLICIES.has(lbRaw)) {
    lbPolicy = lbRaw as LbPolicy;
  } else {
    errors.add('lbPolicy', `"${lbRaw}" is not supported (ROUND_ROBIN, RANDOM, LEAST_REQUEST, RING_HASH)`);
  }

  let connectTimeoutMs = 5000;
  if (raw.connectTimeout !== undefined) {
    const ms = durationMs(raw.connectTimeout);
    if (ms === undefined || ms <= 0) errors.add('connectTimeout', 'must be a positive duration');
    else connectTimeoutMs = ms;
  }

  let edsServiceName: string | undefined;
  if (type === 'EDS') {
    const eds = obj(raw.edsClusterConfig);
    const source = obj(eds?.edsConfig);
    if (!source) errors.add('edsClusterConfig.edsConfig', 'required for type EDS');
    else if (!obj(source.ads)) errors.add('edsClusterConfig.edsConfig', 'only ads config sources are supported');
    edsServiceName = str(eds?.serviceName) || name;
  }

  let staticEndpoints: Endpoint[] = [];
  const la = obj(raw.loadAssignment);
  if (la && type !== 'EDS' && type !== 'ORIGINAL_DST') staticEndpoints = compileLoadAssignment(la, errors, 'loadAssignment.');
  if ((type === 'STATIC' || type === 'STRICT_DNS' || type === 'LOGICAL_DNS') && !la) {
    errors.add('loadAssignment', `required for type ${type}`);
  }
  // Envoy: one logical host, so exactly one locality with exactly one endpoint.
  if (type === 'LOGICAL_DNS' && la) {
    const localities = arr(la.endpoints);
    if (localities.length !== 1 || arr(obj(localities[0])?.lbEndpoints).length !== 1) {
      errors.add('loadAssignment.endpoints', 'LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint');
    }
  }

  const circuitBreakers = decodeCircuitBreakers(raw, errors);
  const outlierDetection = decodeOutlierDetection(raw, errors);
  const lb = decodeLbSettings(raw, errors);
  const upstreamProtocol = decodeUpstreamProtocol(raw, errors);
  const connection = decodeConnectionOptions(raw, errors);
  const transport = raw.transportSocket !== undefined || raw.transportSocketMatches !== undefined ? decodeUpstreamTransport(raw, errors) : undefined;
  const isDns = type === 'STRICT_DNS' || type === 'LOGICAL_DNS';
  const dns = isDns ? decodeDnsSettings(raw, errors) : undefined;

  if (!errors.ok) return { name, errors: errors.list };
  return {
    name,
    value: { name, type: type as DiscoveryType, edsServiceName, staticEndpoints, lbPolicy, connectTimeoutMs, circuitBreakers, outlierDetection, lb, upstreamProtocol, connection, transport, dns, dnsHosts: isDns ? {} : undefined, raw },
    errors: [],
  };
}
