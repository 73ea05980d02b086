// The parts of a Cluster that shape traffic rather than say where it goes: circuit breaker
// thresholds, outlier detection, and load balancer settings. Defaults are Envoy's.
import { arr, durationMs, FieldErrors, num, obj, str, wrapped, type Obj } from './fields.js';

export interface CircuitBreakerLimits {
  maxConnections: number;
  maxPendingRequests: number;
  maxRequests: number;
  maxRetries: number;
  /** retry_budget: when set, it replaces max_retries (Envoy). */
  retryBudget?: { budgetPercent: number; minRetryConcurrency: number };
}

export const DEFAULT_LIMITS: CircuitBreakerLimits = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 };

export interface OutlierDetectionConfig {
  consecutive5xx: number;
  consecutiveGatewayFailure: number;
  enforcingConsecutive5xx: number;
  enforcingConsecutiveGatewayFailure: number;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionTimeMs: number;
  maxEjectionPercent: number;
}

export interface LbSettings {
  /** common_lb_config.healthy_panic_threshold, percent (Envoy default 50). */
  panicThresholdPercent: number;
  /** ring_hash_lb_config.minimum_ring_size (default 1024). */
  minimumRingSize: number;
  maximumRingSize: number;
  /** least_request_lb_config.choice_count (default 2). */
  choiceCount: number;
}

function uint(v: unknown, field: string, errors: FieldErrors, fallback: number): number {
  const raw = wrapped(v);
  if (raw === undefined) return fallback;
  const n = num(raw);
  if (n === undefined || !Number.isInteger(n) || n < 0) {
    errors.add(field, `${JSON.stringify(raw)} is not a non-negative integer`);
    return fallback;
  }
  return n;
}

function percent(v: unknown, field: string, errors: FieldErrors, fallback: number): number {
  if (v === undefined) return fallback;
  const raw = obj(v) ? num(obj(v)?.value) : num(wrapped(v));
  if (raw === undefined || raw < 0 || raw > 100) {
    errors.add(field, `${JSON.stringify(v)} is not a percentage in [0, 100]`);
    return fallback;
  }
  return raw;
}

function duration(v: unknown, field: string, errors: FieldErrors, fallback: number): number {
  if (v === undefined) return fallback;
  const ms = durationMs(v);
  if (ms === undefined || ms <= 0) {
    errors.add(field, 'must be a positive duration');
    return fallback;
  }
  return ms;
}

/** Only the DEFAULT priority's thresholds apply (the proxy routes no HIGH priority traffic). */
export function decodeCircuitBreakers(raw: Obj, errors: FieldErrors): CircuitBreakerLimits {
  const cb = obj(raw.circuitBreakers);
  if (!cb) return DEFAULT_LIMITS;
  let limits = DEFAULT_LIMITS;
  arr(cb.thresholds).forEach((t, i) => {
    const th = obj(t) ?? {};
    const f = `circuitBreakers.thresholds[${i}]`;
    const priority = str(th.priority) ?? 'DEFAULT';
    if (priority !== 'DEFAULT' && priority !== 'HIGH') errors.add(`${f}.priority`, `"${priority}" is not DEFAULT or HIGH`);
    if (priority !== 'DEFAULT') return;
    const budget = obj(th.retryBudget);
    limits = {
      maxConnections: uint(th.maxConnections, `${f}.maxConnections`, errors, DEFAULT_LIMITS.maxConnections),
      maxPendingRequests: uint(th.maxPendingRequests, `${f}.maxPendingRequests`, errors, DEFAULT_LIMITS.maxPendingRequests),
      maxRequests: uint(th.maxRequests, `${f}.maxRequests`, errors, DEFAULT_LIMITS.maxRequests),
      maxRetries: uint(th.maxRetries, `${f}.maxRetries`, errors, DEFAULT_LIMITS.maxRetries),
      retryBudget: budget ? {
        budgetPercent: percent(budget.budgetPercent, `${f}.retryBudget.budgetPercent`, errors, 20),
        minRetryConcurrency: uint(budget.minRetryConcurrency, `${f}.retryBudget.minRetryConcurrency`, errors, 3),
      } : undefined,
    };
  });
  return limits;
}

export function decodeOutlierDetection(raw: Obj, errors: FieldErrors): OutlierDetectionConfig | undefined {
  const od = obj(raw.outlierDetection);
  if (!od) return undefined;
  const f = 'outlierDetection';
  const cfg: OutlierDetectionConfig = {
    consecutive5xx: uint(od.consecutive_5xx ?? od.consecutive5xx, `${f}.consecutive5xx`, errors, 5),
    consecutiveGatewayFailure: uint(od.consecutiveGatewayFailure, `${f}.consecutiveGatewayFailure`, errors, 5),
    enforcingConsecutive5xx: uint(od.enforcingConsecutive_5xx ?? od.enforcingConsecutive5xx, `${f}.enforcingConsecutive5xx`, errors, 100),
    // Envoy ships gateway-failure ejection detected but not enforced (0) by default.
    enforcingConsecutiveGatewayFailure: uint(od.enforcingConsecutiveGatewayFailure, `${f}.enforcingConsecutiveGatewayFailure`, errors, 0),
    intervalMs: duration(od.interval, `${f}.interval`, errors, 10_000),
    baseEjectionTimeMs: duration(od.baseEjectionTime, `${f}.baseEjectionTime`, errors, 30_000),
    maxEjectionTimeMs: duration(od.maxEjectionTime, `${f}.maxEjectionTime`, errors, 300_000),
    maxEjectionPercent: uint(od.maxEjectionPercent, `${f}.maxEjectionPercent`, errors, 10),
  };
  if (cfg.maxEjectionPercent > 100) errors.add(`${f}.maxEjectionPercent`, `${cfg.maxEjectionPercent} is more than 100`);
  if (cfg.enforcingConsecutive5xx > 100) errors.add(`${f}.enforcingConsecutive5xx`, 'is more than 100');
  if (cfg.enforcingConsecutiveGatewayFailure > 100) errors.add(`${f}.enforcingConsecutiveGatewayFailure`, 'is more than 100');
  if (cfg.maxEjectionTimeMs < cfg.baseEjectionTimeMs && od.maxEjectionTime !== undefined) {
    errors.add(`${f}.maxEjectionTime`, 'must be at least baseEjectionTime');
  }
  return cfg;
}

export function decodeLbSettings(raw: Obj, errors: FieldErrors): LbSettings {
  const common = obj(raw.commonLbConfig) ?? {};
  const ring = obj(raw.ringHashLbConfig) ?? {};
  const lr = obj(raw.leastRequestLbConfig) ?? {};
  const settings: LbSettings = {
    panicThresholdPercent: percent(common.healthyPanicThreshold, 'commonLbConfig.healthyPanicThreshold', errors, 50),
    minimumRingSize: uint(ring.minimumRingSize, 'ringHashLbConfig.minimumRingSize', errors, 1024),
    maximumRingSize: uint(ring.maximumRingSize, 'ringHashLbConfig.maximumRingSize', errors, 8 * 1024 * 1024),
    choiceCount: uint(lr.choiceCount, 'leastRequestLbConfig.choiceCount', errors, 2),
  };
  if (settings.minimumRingSize < 1 || settings.minimumRingSize > 8 * 1024 * 1024) errors.add('ringHashLbConfig.minimumRingSize', 'must be in [1, 8M]');
  if (settings.maximumRingSize < settings.minimumRingSize) errors.add('ringHashLbConfig.maximumRingSize', 'must be at least minimumRingSize');
  if (settings.choiceCount < 2) errors.add('leastRequestLbConfig.choiceCount', 'must be at least 2');
  const hashFn = str(ring.hashFunction);
  if (hashFn !== undefined && hashFn !== 'XX_HASH' && hashFn !== 'MURMUR_HASH_2') errors.add('ringHashLbConfig.hashFunction', `"${hashFn}" is not XX_HASH or MURMUR_HASH_2`);
  return settings;
}
