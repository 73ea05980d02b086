import type { Status } from './types.js';

/** An API error carrying the server's metav1.Status. */
export class ApiError extends Error {
  constructor(readonly code: number, readonly status: Status | undefined, context: string) {
    super(`${context}: ${code} ${status?.reason ?? ''} ${status?.message ?? ''}`.trim());
  }
  get reason(): string | undefined { return this.status?.reason; }
}

export function isNotFound(e: unknown): boolean { return e instanceof ApiError && e.code === 404; }
export function isConflict(e: unknown): boolean { return e instanceof ApiError && e.code === 409; }
export function isAlreadyExists(e: unknown): boolean { return e instanceof ApiError && e.code === 409 && e.reason === 'AlreadyExists'; }
export function isGone(e: unknown): boolean { return e instanceof ApiError && e.code === 410; }
