// Upstream connection lifetime from HttpProtocolOptions.common_http_protocol_options
// (idle_timeout, max_requests_per_connection; the deprecated Cluster.max_requests_per_connection
// too) and the DNS settings of STRICT_DNS clusters.
import { arr, durationMs, FieldErrors, num, obj, socketAddress, str, wrapped, type HostPort, type Obj } from './fields.js';

/**
 * Envoy's default upstream idle timeout is 1 h; that outlives most servers' keep-alive (node
 * 5 s, Apache 5 s) and is the classic 503 trap. Trellis closes idle connections after 4 s
 * unless the cluster says otherwise (and undici honours a shorter `Keep-Alive: timeout`).
 */
export const DEFAULT_UPSTREAM_IDLE_MS = 4_000;

export interface ConnectionOptions {
  idleTimeoutMs: number;
  /** 0 = unlimited. */
  maxRequestsPerConnection: number;
}

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

export function decodeConnectionOptions(raw: Obj, errors: FieldErrors): ConnectionOptions {
  const out: ConnectionOptions = { idleTimeoutMs: DEFAULT_UPSTREAM_IDLE_MS, maxRequestsPerConnection: 0 };
  const deprecated = num(wrapped(raw.maxRequestsPerConnection));
  if (deprecated !== undefined) out.maxRequestsPerConnection = deprecated;
  const field = `typedExtensionProtocolOptions["${HTTP_PROTOCOL_OPTIONS}"].commonHttpProtocolOptions`;
  const common = obj(obj(obj(raw.typedExtensionProtocolOptions)?.[HTTP_PROTOCOL_OPTIONS])?.commonHttpProtocolOptions);
  if (common?.idleTimeout !== undefined) {
    const ms = durationMs(common.idleTimeout);
    if (ms === undefined || ms < 0) errors.add(`${field}.idleTimeout`, 'must be a non-negative duration');
    // 0 disables the idle timeout (Envoy); a day stands in for "never".
    else out.idleTimeoutMs = ms === 0 ? 86_400_000 : ms;
  }
  const max = common ? num(wrapped(common.maxRequestsPerConnection)) : undefined;
  if (common?.maxRequestsPerConnection !== undefined) {
    if (max === undefined || !Number.isInteger(max) || max < 0) errors.add(`${field}.maxRequestsPerConnection`, 'must be a non-negative integer');
    else out.maxRequestsPerConnection = max;
  }
  if (!Number.isInteger(out.maxRequestsPerConnection) || out.maxRequestsPerConnection < 0) {
    errors.add('maxRequestsPerConnection', 'must be a non-negative integer');
  }
  return out;
}

export interface DnsSettings {
  refreshMs: number;
  /** Explicit resolvers (Cluster.dns_resolvers or the c-ares typed config); empty = the system's. */
  resolvers: HostPort[];
  family: 4 | 6 | 0;
}

export function decodeDnsSettings(raw: Obj, errors: FieldErrors): DnsSettings {
  let refreshMs = 5_000;
  if (raw.dnsRefreshRate !== undefined) {
    const ms = durationMs(raw.dnsRefreshRate);
    if (ms === undefined || ms < 1) errors.add('dnsRefreshRate', 'must be at least 1 ms');
    else refreshMs = ms;
  }
  const resolvers: HostPort[] = [];
  arr(raw.dnsResolvers).forEach((a, i) => { const hp = socketAddress(a, `dnsResolvers[${i}]`, errors); if (hp) resolvers.push(hp); });
  const cares = obj(obj(raw.typedDnsResolverConfig)?.typedConfig);
  arr(cares?.resolvers).forEach((a, i) => {
    const hp = socketAddress(a, `typedDnsResolverConfig.typedConfig.resolvers[${i}]`, errors);
    if (hp) resolvers.push(hp);
  });
  const fam = str(raw.dnsLookupFamily) ?? 'AUTO';
  const family = fam === 'V4_ONLY' || fam === 'V4_PREFERRED' ? 4 : fam === 'V6_ONLY' ? 6 : 0;
  return { refreshMs, resolvers, family };
}
