// Protocol bookkeeping of one ADS stream, apart from translation: the proxy's node, and
// per type URL what it subscribed to, what was sent (version, nonce, content hash and the
// cache entry it came from), what it ACKed, and its last NACK. The go-control-plane shape:
// the server asks this object what a request means, then decides what to send.
import type { ProxyNode, Proxy } from '../model/proxy.js';
import type { DeltaWatches } from './delta.js';
import type { XdsIdentity } from './authn.js';
import { WILDCARD, type Subscription, type SubscriptionPool, type TypeEntry } from './cache.js';

export interface SentState {
  version: string;
  nonce: string;
  /** Hash of everything the proxy holds of the type after this response. */
  hash: string;
  at: number;
  pushVersion: string;
  /** The cache entry the proxy now holds (with `sub`); a later entry is diffed against it. */
  entry?: TypeEntry;
  sub?: Subscription;
  /** Resources in this response (a partial SotW response carries only changed ones). */
  count: number;
}
export interface NackState { message: string; version: string; nonce: string; at: number }

export interface WatchState {
  typeUrl: string;
  /** What the proxy asked for: WILDCARD, or its names (interned). */
  sub: Subscription;
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
  /** The snapshot version `proxy` was resolved against. */
  proxyPushVersion?: string;
  readonly watches = new Map<string, WatchState>();
  /** Set on delta streams: their per-type bookkeeping. */
  delta?: DeltaWatches;
  /** A gRPC client (node type other than sidecar/router): gets the proxyless generators. */
  proxyless = false;
  readonly connectedAt = Date.now();
  /** Types the proxy (re)subscribed to that must be answered even if unchanged. */
  readonly forced = new Set<string>();
  /** Nothing was pushed to this stream yet (its first push is rate-limited). */
  fresh = true;
  /** The caller's verified ServiceAccount (TLS port, token reviewed); undefined on the plaintext port. */
  identity?: XdsIdentity;
  /** Why the gateway credentials asked for were withheld (warned once per connection). */
  secretsWithheld?: string;

  constructor(readonly id: string, readonly peer: string) {}

  onRequest(req: DiscoveryRequestLike, wildcardType: boolean, pool: SubscriptionPool): RequestOutcome {
    const typeUrl = req.typeUrl ?? '';
    const names = req.resourceNames ?? [];
    const wildcard = wildcardType && (names.length === 0 || names.includes('*'));
    const nonce = req.responseNonce ?? '';
    let w = this.watches.get(typeUrl);
    const sub = (): Subscription => (wildcard ? WILDCARD : pool.intern(names));
    if (!nonce) {
      if (!w) { w = { typeUrl, sub: sub() }; this.watches.set(typeUrl, w); } else w.sub = sub();
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
    const next = sub();
    if (next !== w.sub) {
      w.sub = next;
      return { kind: 'subscribe' };
    }
    return { kind: 'ack' };
  }
}
