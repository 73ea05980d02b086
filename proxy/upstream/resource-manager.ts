// Circuit breakers for one cluster (Envoy's ResourceManager, DEFAULT priority). HTTP/1.1
// carries one request per connection at a time, so an attempt holds one connection slot;
// attempts beyond max_connections wait as pending requests, up to max_pending_requests.
import type { CancelSignal } from '../http/cancel.js';
import type { CircuitBreakerLimits } from '../xds/resources/cluster-policies.js';

export type Overflow = 'max_connections' | 'max_pending_requests' | 'max_requests' | 'max_retries';

export class ResourceManager {
  requests = 0;
  connections = 0;
  pending = 0;
  retries = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(public limits: CircuitBreakerLimits) {}

  /** A downstream request entering the cluster; false when max_requests is reached. */
  tryRequest(): boolean {
    if (this.requests >= this.limits.maxRequests) return false;
    this.requests++;
    return true;
  }

  releaseRequest(): void {
    this.requests--;
  }

  /** A retry about to start; false when max_retries (or the retry budget) is exhausted. */
  tryRetry(): boolean {
    const budget = this.limits.retryBudget;
    const limit = budget
      ? Math.max(budget.minRetryConcurrency, Math.floor((budget.budgetPercent / 100) * (this.requests + this.pending)))
      : this.limits.maxRetries;
    if (this.retries >= limit) return false;
    this.retries++;
    return true;
  }

  releaseRetry(): void {
    this.retries--;
  }

  /**
   * Takes a connection slot, waiting as a pending request when all are busy.
   * Resolves 'cx_overflow' when it had to wait, 'ok' when it did not; rejects never.
   * Returns undefined when the pending queue is full.
   */
  acquireConnection(signal: CancelSignal): Promise<'ok' | 'queued' | 'aborted'> | undefined {
    if (this.connections < this.limits.maxConnections) {
      this.connections++;
      return Promise.resolve('ok');
    }
    if (this.pending >= this.limits.maxPendingRequests) return undefined;
    this.pending++;
    return new Promise((resolve) => {
      const wake = (): void => {
        signal.off('abort', onAbort);
        this.pending--;
        this.connections++;
        resolve('queued');
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(wake);
        if (i >= 0) this.waiters.splice(i, 1);
        this.pending--;
        resolve('aborted');
      };
      signal.once('abort', onAbort);
      this.waiters.push(wake);
    });
  }

  releaseConnection(): void {
    const next = this.waiters.shift();
    // The slot passes straight to the oldest pending request.
    if (next) {
      this.connections--;
      next();
    } else this.connections--;
  }
}
