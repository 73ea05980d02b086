// The per-rule parts of an Istio HTTPRoute that become Envoy route fields: retries (with
// Trellis's safer default, see pilot/README.md), fault injection and CORS (per-filter
// config), mirrors, header operations and redirects.
import type { CorsPolicy, HTTPFaultInjection, HTTPRedirect, HTTPRetry, Headers, StringMatch } from '../../../api/istio/index.js';
import { fractionalPercent, parseDuration, type HeaderValueOption, type Json, type Route } from './envoy.js';
import { TYPE_URL } from '../../../api/xds/protos.js';

export const FAULT_FILTER = 'envoy.filters.http.fault';
export const CORS_FILTER = 'envoy.filters.http.cors';

/** Istio's own default retryOn (istiod, MeshConfig defaultHttpRetryPolicy). */
export const ISTIO_DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';
/**
 * Trellis's default when a rule has no `retries`: Istio's 2 attempts, but only on the
 * conditions where the request provably never reached the application, so retrying is safe
 * for any method (POST included). See pilot/README.md.
 */
export const TRELLIS_DEFAULT_RETRY_ON = 'connect-failure,refused-stream';

function previousHosts(): Json[] {
  return [{ name: 'envoy.retry_host_predicates.previous_hosts', typedConfig: { '@type': TYPE_URL.previousHosts } }];
}

/**
 * Envoy RetryPolicy for a rule (Istio's retry.go): undefined when attempts is 0 (no
 * retries); integer retryOn tokens become retriableStatusCodes.
 */
export function retryPolicy(retries: HTTPRetry | undefined, consistentHash: boolean): Json | undefined {
  if (!retries) {
    const policy: Json = { retryOn: TRELLIS_DEFAULT_RETRY_ON, numRetries: { value: 2 }, hostSelectionRetryMaxAttempts: '5' };
    if (!consistentHash) policy.retryHostPredicate = previousHosts();
    return policy;
  }
  const attempts = retries.attempts ?? 0;
  if (attempts <= 0) return undefined;
  const conditions: string[] = [];
  const codes: number[] = [];
  for (const token of (retries.retryOn ?? ISTIO_DEFAULT_RETRY_ON).split(',').map((t) => t.trim()).filter(Boolean)) {
    if (/^\d+$/.test(token)) codes.push(Number(token));
    else if (!conditions.includes(token)) conditions.push(token);
  }
  if (codes.length && !conditions.includes('retriable-status-codes')) conditions.push('retriable-status-codes');
  const policy: Json = { retryOn: conditions.join(','), numRetries: { value: attempts } };
  if (codes.length) policy.retriableStatusCodes = codes;
  const perTry = parseDuration(retries.perTryTimeout);
  if (perTry) policy.perTryTimeout = perTry;
  policy.hostSelectionRetryMaxAttempts = '5';
  if (!consistentHash && retries.retryIgnorePreviousHosts !== false) policy.retryHostPredicate = previousHosts();
  const backoff = parseDuration(retries.backoff);
  if (backoff) policy.retryBackOff = { baseInterval: backoff };
  return policy;
}

const GRPC_CODES: Record<string, number> = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

/** HTTPFault for typed_per_filter_config; an unset percentage means 0% (Istio). */
export function faultConfig(fault: HTTPFaultInjection | undefined): Json | undefined {
  if (!fault || (!fault.delay && !fault.abort)) return undefined;
  const out: Json = { '@type': TYPE_URL.fault };
  if (fault.delay) {
    const fixed = parseDuration(fault.delay.fixedDelay);
    if (fixed) out.delay = { fixedDelay: fixed, percentage: fractionalPercent(fault.delay.percentage?.value ?? fault.delay.percent ?? 0) };
  }
  if (fault.abort) {
    const abort: Json = { percentage: fractionalPercent(fault.abort.percentage?.value ?? 0) };
    if (fault.abort.grpcStatus !== undefined) abort.grpcStatus = GRPC_CODES[fault.abort.grpcStatus] ?? 2;
    else abort.httpStatus = fault.abort.httpStatus ?? 503;
    out.abort = abort;
  }
  return out.delay || out.abort ? out : undefined;
}

export function stringMatcher(sm: StringMatch): Json | undefined {
  if (sm.exact !== undefined) return { exact: sm.exact };
  if (sm.prefix !== undefined) return { prefix: sm.prefix };
  if (sm.regex !== undefined) return { safeRegex: { regex: sm.regex } };
  return undefined;
}

/** CorsPolicy for typed_per_filter_config (the filter itself is on every outbound HCM). */
export function corsConfig(cors: CorsPolicy | undefined): Json | undefined {
  if (!cors) return undefined;
  const origins = [
    ...(cors.allowOrigins ?? []).map(stringMatcher).filter((m): m is Json => m !== undefined),
    ...(cors.allowOrigin ?? []).map((o) => (o === '*' ? { safeRegex: { regex: '.*' } } : { exact: o })),
  ];
  const out: Json = { '@type': TYPE_URL.corsPolicy, allowOriginStringMatch: origins };
  if (cors.allowMethods?.length) out.allowMethods = cors.allowMethods.join(',');
  if (cors.allowHeaders?.length) out.allowHeaders = cors.allowHeaders.join(',');
  if (cors.exposeHeaders?.length) out.exposeHeaders = cors.exposeHeaders.join(',');
  const maxAge = parseDuration(cors.maxAge);
  if (maxAge) out.maxAge = String(maxAge.seconds);
  if (cors.allowCredentials !== undefined) out.allowCredentials = { value: cors.allowCredentials };
  if (cors.unmatchedPreflights === 'IGNORE') out.forwardNotMatchingPreflights = { value: false };
  return out;
}

/** Istio header operations -> Envoy route (or weighted cluster) header fields. */
export function headerFields(h: Headers | undefined): Pick<Route, 'requestHeadersToAdd' | 'requestHeadersToRemove' | 'responseHeadersToAdd' | 'responseHeadersToRemove'> {
  const out: Pick<Route, 'requestHeadersToAdd' | 'requestHeadersToRemove' | 'responseHeadersToAdd' | 'responseHeadersToRemove'> = {};
  const ops = (o: Headers['request']): HeaderValueOption[] => [
    ...Object.entries(o?.set ?? {}).map(([key, value]) => ({ header: { key, value }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' as const })),
    ...Object.entries(o?.add ?? {}).map(([key, value]) => ({ header: { key, value }, appendAction: 'APPEND_IF_EXISTS_OR_ADD' as const })),
  ];
  const reqAdd = ops(h?.request);
  if (reqAdd.length) out.requestHeadersToAdd = reqAdd;
  if (h?.request?.remove?.length) out.requestHeadersToRemove = [...h.request.remove];
  const resAdd = ops(h?.response);
  if (resAdd.length) out.responseHeadersToAdd = resAdd;
  if (h?.response?.remove?.length) out.responseHeadersToRemove = [...h.response.remove];
  return out;
}

const REDIRECT_CODES: Record<number, string> = {
  301: 'MOVED_PERMANENTLY', 302: 'FOUND', 303: 'SEE_OTHER', 307: 'TEMPORARY_REDIRECT', 308: 'PERMANENT_REDIRECT',
};

/** Envoy RedirectAction; the code defaults to 301 as in Istio. */
export function redirectAction(r: HTTPRedirect): Json {
  const out: Json = {};
  if (r.uri) out.pathRedirect = r.uri;
  if (r.authority) out.hostRedirect = r.authority;
  if (r.scheme) out.schemeRedirect = r.scheme;
  if (r.port) out.portRedirect = r.port;
  else if (r.derivePort === 'FROM_PROTOCOL_DEFAULT') out.portRedirect = r.scheme === 'https' ? 443 : 80;
  const code = REDIRECT_CODES[r.redirectCode ?? 301];
  if (code && code !== 'MOVED_PERMANENTLY') out.responseCode = code;
  return out;
}
