// CrashLoopBackOff timing, as the kubelet does it: the first restart is immediate, then
// 10 s doubling up to 5 min; a container that ran for 10 min resets the back-off.
export const BACKOFF_INITIAL_MS = 10_000;
export const BACKOFF_MAX_MS = 300_000;
export const BACKOFF_RESET_AFTER_MS = 600_000;

export class RestartBackoff {
  private nextDelay = 0;

  /** Called when the container exits; returns the delay before it may start again. */
  onExit(ranForMs: number): number {
    if (ranForMs >= BACKOFF_RESET_AFTER_MS) this.nextDelay = 0;
    const delay = this.nextDelay;
    this.nextDelay = delay === 0 ? BACKOFF_INITIAL_MS : Math.min(delay * 2, BACKOFF_MAX_MS);
    return delay;
  }
}
