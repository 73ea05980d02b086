// A cheap cancellation token for one request. AbortController costs an EventTarget per
// request and a DOMException (with a captured stack) whenever it fires; on the hot path
// that was a measurable share of each request. undici accepts any EventEmitter with
// `aborted` and an 'abort' event as a request signal, and so does the resource manager.
import { EventEmitter } from 'node:events';

export class Cancel extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? new Error('request cancelled');
    this.emit('abort');
  }
}

/** What waiters need of a cancellation token (Cancel satisfies it). */
export interface CancelSignal {
  readonly aborted: boolean;
  once(event: 'abort', fn: () => void): unknown;
  off(event: 'abort', fn: () => void): unknown;
}
