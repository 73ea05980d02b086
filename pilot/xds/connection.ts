// Protocol bookkeeping of one ADS stream, apart from translation: the proxy's node, and
// per type URL what it subscribed to, what was sent (version, nonce, content hash), what it
// ACKed, and its last NACK. The go-control-plane shape: the server asks this object what a
// request means, then decides what to send.
import type { ProxyNode, Proxy } from '../model/proxy.js';
import type { DeltaWatches } from './delta.js';

export interface SentState { version: string; nonce: string; hash: string; names: string[]; at: number; pushVersion: string }
export interface NackState { message: string; version: string; nonce: string; at: number }

export interface WatchState {
  typeUrl: string;
  wildcard: boolean;
  /** Requested names; empty for a wildcard subscription. */
  names: string[];
  sent?: SentState;
  ackedVersion?: string;
  ackedAt?: number;
  lastNack?: NackState;
}

export interface DiscoveryRequestLike {
  versionInfo?: string;
  resourceNames?: string[];
  typeUrl?: string;
  responseNonce?: string;
  errorDetail?: { code?: number; message?: string } | null;
}

export type RequestOutcome =
  | { kind: 'subscribe' }     // first request or a changed subscription: respond now
  | { kind: 'ack' }
  | { kind: 'nack'; message: string; repeated: boolean }
  | { kind: 'stale' };        // answers an older response: ignore

export class Connection {
  node?: ProxyNode;
  proxy?: Proxy;
  readonly watches = new Map<string, WatchState>();
  /** Set on delta streams: their per-type bookkeeping. */
  delta?: DeltaWatches;
  /** A gRPC client (node type other than sidecar/router): gets the proxyless generators. */
  proxyless = false;
  readonly connectedAt = Date.now();

  constructor(readonly id: string, readonly peer: string) {}

  onRequest(req: DiscoveryRequestLike, wildcardType: boolean): RequestOutcome {
    const typeUrl = req.typeUrl ?? '';
    const names = [...(req.resourceNames ?? [])].sort();
    const wildcard = wildcardType && (names.length === 0 || names.includes('*'));
    const nonce = req.responseNonce ?? '';
    let w = this.watches.get(typeUrl);
    if (!nonce) {
      if (!w) { w = { typeUrl, wildcard, names: [] }; this.watches.set(typeUrl, w); }
      w.wildcard = wildcard;
      w.names = wildcard ? [] : names;
      return { kind: 'subscribe' };
    }
    if (!w || nonce !== w.sent?.nonce) return { kind: 'stale' };
    const message = req.errorDetail?.message;
    if (req.errorDetail && (message || req.errorDetail.code)) {
      const text = message || `code ${req.errorDetail.code}`;
      const repeated = w.lastNack?.message === text;
      w.lastNack = { message: text, version: req.versionInfo ?? '', nonce, at: Date.now() };
      return { kind: 'nack', message: text, repeated };
    }
    w.ackedVersion = req.versionInfo ?? '';
    w.ackedAt = Date.now();
    const newNames = wildcard ? [] : names;
    if (w.wildcard !== wildcard || newNames.join('\n') !== w.names.join('\n')) {
      w.wildcard = wildcard;
      w.names = newNames;
      return { kind: 'subscribe' };
    }
    return { kind: 'ack' };
  }

  recordSent(typeUrl: string, sent: SentState): void {
    const w = this.watches.get(typeUrl);
    if (w) w.sent = sent;
  }
}
