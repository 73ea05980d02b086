// envoy.filters.http.fault (HTTPFault): the filter-level config in http_filters and the
// per-route override in typed_per_filter_config, as Istio emits them for VirtualService
// fault injection. Percentages are Envoy's FractionalPercent.
import { durationMs, FieldErrors, num, obj, str, wrapped, type Obj } from './fields.js';

export const FAULT_FILTER = 'envoy.filters.http.fault';
export const FAULT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

export interface FaultConfig {
  delay?: { fixedDelayMs: number; fraction: number };
  abort?: { httpStatus?: number; grpcStatus?: number; fraction: number };
}

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/** FractionalPercent as a probability in [0, 1]; unset means 0 (Envoy's proto default). */
export function fractionalPercent(v: unknown, field: string, errors: FieldErrors): number {
  const p = obj(v);
  if (!p) return 0;
  const numerator = num(p.numerator) ?? 0;
  const den = DENOMINATORS[str(p.denominator) ?? 'HUNDRED'];
  if (den === undefined) {
    errors.add(`${field}.denominator`, `"${String(p.denominator)}" is not HUNDRED, TEN_THOUSAND or MILLION`);
    return 0;
  }
  if (!Number.isInteger(numerator) || numerator < 0) errors.add(`${field}.numerator`, `${String(p.numerator)} is not a non-negative integer`);
  return Math.min(1, numerator / den);
}

export function decodeHttpFault(f: Obj, field: string, errors: FieldErrors): FaultConfig | undefined {
  const before = errors.list.length;
  const out: FaultConfig = {};
  const delay = obj(f.delay);
  if (delay) {
    if (obj(delay.headerDelay)) errors.add(`${field}.delay.headerDelay`, 'not supported');
    const ms = durationMs(delay.fixedDelay);
    if (ms === undefined || ms <= 0) errors.add(`${field}.delay.fixedDelay`, 'must be a positive duration');
    else out.delay = { fixedDelayMs: ms, fraction: fractionalPercent(delay.percentage, `${field}.delay.percentage`, errors) };
  }
  const abort = obj(f.abort);
  if (abort) {
    const fraction = fractionalPercent(abort.percentage, `${field}.abort.percentage`, errors);
    const http = num(abort.httpStatus);
    const grpc = num(abort.grpcStatus);
    if (obj(abort.headerAbort)) errors.add(`${field}.abort.headerAbort`, 'not supported');
    else if (http !== undefined) {
      if (!Number.isInteger(http) || http < 200 || http >= 600) errors.add(`${field}.abort.httpStatus`, `${http} is not in [200, 600)`);
      else out.abort = { httpStatus: http, fraction };
    } else if (grpc !== undefined) out.abort = { grpcStatus: grpc, fraction };
    else errors.add(`${field}.abort`, 'one of httpStatus, grpcStatus is required');
  }
  for (const unsupported of ['headers', 'downstreamNodes', 'responseRateLimit', 'upstreamCluster'] as const) {
    const v = f[unsupported];
    if (v !== undefined && !(Array.isArray(v) && v.length === 0) && v !== '') errors.add(`${field}.${unsupported}`, 'not supported');
  }
  if (wrapped(f.maxActiveFaults) !== undefined) {
    const m = num(wrapped(f.maxActiveFaults));
    if (m === undefined || m < 0) errors.add(`${field}.maxActiveFaults`, 'must be a non-negative integer');
  }
  return errors.list.length === before ? out : undefined;
}
