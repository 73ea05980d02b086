// RetryPolicy (route and virtual host level): decode and validate into the conditions the
// router evaluates after each attempt. Envoy defaults: num_retries 1, back-off 25 ms base,
// 10x base max, host selection attempts 1.
import { arr, durationMs, FieldErrors, num, obj, str, wrapped, type Obj } from './fields.js';

export type RetryOn =
  | '5xx' | 'gateway-error' | 'reset' | 'connect-failure' | 'refused-stream' | 'retriable-4xx' | 'retriable-status-codes'
  | 'reset-before-request' | 'retriable-headers' | 'envoy-ratelimited' | 'http3-post-connect-failure'
  // gRPC conditions (Istio's default policy names some of them): judged on grpc-status.
  | 'cancelled' | 'deadline-exceeded' | 'internal' | 'resource-exhausted' | 'unavailable';

const RETRY_ON: ReadonlySet<string> = new Set<RetryOn>([
  '5xx', 'gateway-error', 'reset', 'connect-failure', 'refused-stream', 'retriable-4xx', 'retriable-status-codes',
  'reset-before-request', 'retriable-headers', 'envoy-ratelimited', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

export const PREVIOUS_HOSTS = 'envoy.retry_host_predicates.previous_hosts';
const PREVIOUS_HOSTS_TYPE = 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

export interface RetryPolicy {
  retryOn: ReadonlySet<RetryOn>;
  numRetries: number;
  perTryTimeoutMs?: number;
  retriableStatusCodes: ReadonlySet<number>;
  backOffBaseMs: number;
  backOffMaxMs: number;
  /** retry_host_predicate previous_hosts: a retry avoids hosts already tried. */
  avoidPreviousHosts: boolean;
  hostSelectionRetryMaxAttempts: number;
}

export function decodeRetryPolicy(rp: Obj, field: string, errors: FieldErrors): RetryPolicy | undefined {
  const before = errors.list.length;
  const retryOn = new Set<RetryOn>();
  for (const token of (str(rp.retryOn) ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    if (RETRY_ON.has(token)) retryOn.add(token as RetryOn);
    else errors.add(`${field}.retryOn`, `"${token}" is not a retry condition`);
  }
  const n = num(wrapped(rp.numRetries));
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) errors.add(`${field}.numRetries`, `${String(n)} is not a non-negative integer`);
  let perTryTimeoutMs: number | undefined;
  if (rp.perTryTimeout !== undefined) {
    perTryTimeoutMs = durationMs(rp.perTryTimeout);
    if (perTryTimeoutMs === undefined || perTryTimeoutMs < 0) errors.add(`${field}.perTryTimeout`, 'must be a non-negative duration');
    else if (perTryTimeoutMs === 0) perTryTimeoutMs = undefined; // 0 means "no per try timeout"
  }
  const retriableStatusCodes = new Set<number>();
  arr(rp.retriableStatusCodes).forEach((c, i) => {
    const code = num(c);
    if (code === undefined || !Number.isInteger(code) || code < 100 || code > 599) errors.add(`${field}.retriableStatusCodes[${i}]`, `${String(c)} is not an HTTP status`);
    else retriableStatusCodes.add(code);
  });
  let backOffBaseMs = 25;
  let backOffMaxMs = 250;
  const bo = obj(rp.retryBackOff);
  if (bo) {
    const base = durationMs(bo.baseInterval);
    // Envoy requires base_interval > 0 and max_interval >= base_interval.
    if (base === undefined || base <= 0) errors.add(`${field}.retryBackOff.baseInterval`, 'must be a positive duration');
    else {
      backOffBaseMs = base;
      backOffMaxMs = base * 10;
    }
    if (bo.maxInterval !== undefined) {
      const max = durationMs(bo.maxInterval);
      if (max === undefined || max <= 0) errors.add(`${field}.retryBackOff.maxInterval`, 'must be a positive duration');
      else if (max < backOffBaseMs) errors.add(`${field}.retryBackOff.maxInterval`, 'must be at least baseInterval');
      else backOffMaxMs = max;
    }
  }
  let avoidPreviousHosts = false;
  arr(rp.retryHostPredicate).forEach((p, i) => {
    const po = obj(p) ?? {};
    const tc = obj(po.typedConfig);
    const type = str(tc?.['@type']) ?? str(tc?.typeUrl);
    if (str(po.name) === PREVIOUS_HOSTS || type === PREVIOUS_HOSTS_TYPE) avoidPreviousHosts = true;
    else errors.add(`${field}.retryHostPredicate[${i}]`, `"${str(po.name) ?? type ?? ''}" is not supported (${PREVIOUS_HOSTS})`);
  });
  if (arr(rp.retryPriority).length > 0 || obj(rp.retryPriority)) errors.add(`${field}.retryPriority`, 'not supported');
  const hs = num(rp.hostSelectionRetryMaxAttempts);
  if (errors.list.length !== before) return undefined;
  return {
    retryOn,
    numRetries: n ?? 1,
    perTryTimeoutMs,
    retriableStatusCodes,
    backOffBaseMs,
    backOffMaxMs,
    avoidPreviousHosts,
    hostSelectionRetryMaxAttempts: hs !== undefined && hs > 0 ? hs : 1,
  };
}
