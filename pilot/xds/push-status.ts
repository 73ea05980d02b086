// What the last snapshot push did, for /debug/push_status: what triggered it, how many
// proxies it reached, responses and resources per type, how long generating, writing and
// converging (every proxy's last ACK) took. Convergence of each proxy is observed into
// pilot_proxy_convergence_time from the change's arrival to that proxy's last ACK.
import type { PilotMetrics } from '../metrics.js';

export interface PushTrigger { kinds: string[]; events: number; firstEventAt: number; full: boolean }

export interface PushStatusJson {
  version: string;
  trigger: { kinds: string[]; events: number; firstEventAt: string; full: boolean };
  startedAt: string;
  proxies: number;
  pushed: number;
  responses: Record<string, number>;
  resources: Record<string, number>;
  encodedResources: number;
  acked: number;
  nacked: number;
  pendingAcks: number;
  durations: { snapshotMs: number; pushMs?: number; convergenceMs?: number };
}

export class PushRecord {
  readonly startedAt = Date.now();
  proxies = 0;
  pushed = 0;
  readonly responses: Record<string, number> = {};
  readonly resources: Record<string, number> = {};
  encodedResources = 0;
  acked = 0;
  nacked = 0;
  /** Proxies sent something by this push that have not ACKed all of it. */
  pendingAcks = 0;
  pushedAt?: number;
  convergedAt?: number;

  constructor(readonly version: string, readonly trigger: PushTrigger, private readonly metrics: PilotMetrics) {}

  sent(type: string, resources: number): void {
    this.responses[type] = (this.responses[type] ?? 0) + 1;
    this.resources[type] = (this.resources[type] ?? 0) + resources;
  }

  /** A proxy got responses of this push; `settle` is called once it ACKed or NACKed all. */
  awaiting(): (ok: boolean) => void {
    this.pushed++;
    this.pendingAcks++;
    let done = false;
    return (ok) => {
      if (done) return;
      done = true;
      this.pendingAcks--;
      if (ok) {
        this.acked++;
        this.metrics.convergence.observe((Date.now() - this.trigger.firstEventAt) / 1000);
      } else this.nacked++;
      if (!this.pendingAcks && this.pushedAt !== undefined) this.convergedAt = Date.now();
    };
  }

  /** The push queue is empty: everything of this push was written. */
  written(): void {
    this.pushedAt = Date.now();
    if (!this.pendingAcks) this.convergedAt = this.pushedAt;
  }

  json(): PushStatusJson {
    const t = this.trigger;
    return {
      version: this.version,
      trigger: { kinds: t.kinds, events: t.events, firstEventAt: new Date(t.firstEventAt).toISOString(), full: t.full },
      startedAt: new Date(this.startedAt).toISOString(),
      proxies: this.proxies, pushed: this.pushed, responses: this.responses, resources: this.resources,
      encodedResources: this.encodedResources, acked: this.acked, nacked: this.nacked, pendingAcks: this.pendingAcks,
      durations: {
        snapshotMs: this.startedAt - t.firstEventAt,
        pushMs: this.pushedAt !== undefined ? this.pushedAt - this.startedAt : undefined,
        convergenceMs: this.convergedAt !== undefined ? this.convergedAt - t.firstEventAt : undefined,
      },
    };
  }
}
