// What the sidecar needs from an ADS stream, state-of-the-world or delta: subscriptions,
// start/stop and the counters the admin page shows.

/** Per-resource detail of a delta response, so the config store can apply removals. */
export interface DeltaDetail {
  /** Names the server removed (or that the type no longer holds). */
  removed: string[];
  /** Resource name -> the version the server gave it. */
  versions: ReadonlyMap<string, string>;
}

/**
 * Applies a response's resources (for delta: the type's whole state after this response);
 * returns an error message to NACK, or undefined to ACK.
 */
export type ResponseHandler = (typeUrl: string, resources: import('./resources/fields.js').Obj[], version: string, delta?: DeltaDetail) => string | undefined;

export interface AdsStats {
  connects: number;
  responses: number;
  acks: number;
  nacks: number;
  streamErrors: number;
}

export interface XdsTransport {
  readonly stats: AdsStats;
  /** 'sotw' or 'delta', for /server_info and config_dump readers. */
  readonly mode: 'sotw' | 'delta';
  subscribe(typeUrl: string, names: string[] | undefined): void;
  start(): void;
  stop(): void;
}

/** Reconnect delay: doubling from initial up to max, each try jittered by ±20%. */
export class Backoff {
  private current: number;
  constructor(private readonly initialMs = 500, private readonly maxMs = 30_000) {
    this.current = initialMs;
  }

  next(): number {
    const delay = this.current * (0.8 + Math.random() * 0.4);
    this.current = Math.min(this.current * 2, this.maxMs);
    return delay;
  }

  reset(): void {
    this.current = this.initialMs;
  }
}
