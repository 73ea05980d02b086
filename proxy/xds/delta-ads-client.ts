// The delta (incremental) ADS stream, DeltaAggregatedResources: per type the subscribed
// names (or the wildcard), each held resource's version, removals, ACK/NACK by nonce, and on
// reconnect initial_resource_versions so the server sends only what changed meanwhile. The
// handler is given a type's whole state after each response, like state-of-the-world, plus
// the removed names; what it rejects is NACKed and the held state stays as it was.
import { decodeAny, type AnyMessage } from './any.js';
import type { XdsNode } from './node.js';
import type { Obj } from './resources/fields.js';
import { AdsStream, INVALID_ARGUMENT, type AdsClientOptions } from './ads-stream.js';
import type { XdsTransport } from './xds-transport.js';

interface DeltaResource {
  name?: string;
  version?: string;
  resource?: AnyMessage | null;
  aliases?: string[];
}

interface DeltaDiscoveryResponse {
  systemVersionInfo?: string;
  resources?: DeltaResource[];
  typeUrl?: string;
  removedResources?: string[];
  nonce?: string;
}

interface DeltaDiscoveryRequest {
  node?: XdsNode;
  typeUrl: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail?: { code: number; message: string };
}

interface Held {
  version: string;
  body: Obj;
}

interface TypeState {
  /** undefined = wildcard (CDS/LDS); a set = named subscription (EDS/RDS). */
  names: Set<string> | undefined;
  /** Names subscribed/unsubscribed since the last request on this stream. */
  pendingSubscribe: Set<string>;
  pendingUnsubscribe: Set<string>;
  /** What the last accepted responses left: name -> version and decoded body. */
  held: Map<string, Held>;
  /** False until the first request of the current stream went out for this type. */
  requested: boolean;
}

/** The delta client takes the same options as the state-of-the-world one. */
export type DeltaAdsClientOptions = AdsClientOptions;

export class DeltaAdsClient extends AdsStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse> implements XdsTransport {
  readonly mode = 'delta' as const;
  private readonly types = new Map<string, TypeState>();

  constructor(opts: DeltaAdsClientOptions) {
    super(opts, 'DeltaAggregatedResources', 'xds(delta)');
  }

  /** The versions held per type, as config_dump and tests read them. */
  heldVersions(typeUrl: string): Record<string, string> {
    const st = this.types.get(typeUrl);
    return Object.fromEntries([...(st?.held ?? [])].map(([n, h]) => [n, h.version]));
  }

  /** Sets the subscription of a type (undefined = wildcard) and sends only the difference. */
  subscribe(typeUrl: string, names: string[] | undefined): void {
    let st = this.types.get(typeUrl);
    if (!st) {
      // An empty named subscription would read as a wildcard: wait for a first name.
      if (names !== undefined && names.length === 0) return;
      st = { names: names ? new Set() : undefined, pendingSubscribe: new Set(), pendingUnsubscribe: new Set(), held: new Map(), requested: false };
      this.types.set(typeUrl, st);
    }
    if (names === undefined || st.names === undefined) {
      if (!st.requested) this.sendRequest(typeUrl, st, '');
      return;
    }
    const wanted = new Set(names);
    let changed = false;
    for (const n of wanted) if (!st.names.has(n)) { st.names.add(n); st.pendingUnsubscribe.delete(n); st.pendingSubscribe.add(n); changed = true; }
    for (const n of [...st.names]) {
      if (wanted.has(n)) continue;
      st.names.delete(n);
      st.pendingSubscribe.delete(n);
      st.pendingUnsubscribe.add(n);
      // An unsubscribed resource is dropped without a removal notice from the server.
      st.held.delete(n);
      changed = true;
    }
    if (changed || !st.requested) this.sendRequest(typeUrl, st, '');
  }

  protected onStreamStarted(): void {
    // A new stream starts from scratch: the full subscription plus what is held, in the order
    // types were first subscribed (CDS, LDS, then EDS, RDS).
    for (const [typeUrl, st] of this.types) {
      st.requested = false;
      st.pendingSubscribe = new Set(st.names ?? []);
      st.pendingUnsubscribe.clear();
      this.sendRequest(typeUrl, st, '');
    }
  }

  private sendRequest(typeUrl: string, st: TypeState, nonce: string, errorDetail?: string): void {
    if (!this.connected) return;
    const req: DeltaDiscoveryRequest = {
      typeUrl,
      resourceNamesSubscribe: [...st.pendingSubscribe],
      resourceNamesUnsubscribe: [...st.pendingUnsubscribe],
      initialResourceVersions: {},
      responseNonce: nonce,
    };
    if (!st.requested) {
      for (const [name, h] of st.held) req.initialResourceVersions[name] = h.version;
      st.requested = true;
    }
    st.pendingSubscribe.clear();
    st.pendingUnsubscribe.clear();
    if (errorDetail !== undefined) req.errorDetail = { code: INVALID_ARGUMENT, message: errorDetail };
    this.write(req);
  }

  protected onResponse(res: DeltaDiscoveryResponse): void {
    const typeUrl = res.typeUrl ?? '';
    const nonce = res.nonce ?? '';
    const st = this.types.get(typeUrl);
    if (!st) {
      this.log(`ignoring response for unsubscribed type ${typeUrl}`);
      return;
    }
    const next = new Map(st.held);
    const changed = new Map<string, string>();
    let error: string | undefined;
    (res.resources ?? []).forEach((r, i) => {
      if (error) return;
      const name = r.name ?? '';
      if (!name) { error = `resources[${i}]: resource without a name`; return; }
      // A resource the client no longer wants (unsubscribed meanwhile) is ignored.
      if (st.names && !st.names.has(name)) return;
      if (!r.resource) { error = `resources[${i}] "${name}": no resource body`; return; }
      try {
        const d = decodeAny(r.resource);
        if (d.typeUrl !== typeUrl) {
          error = `resources[${i}] "${name}": type ${d.typeUrl || '(none)'} does not match response type ${typeUrl}`;
          return;
        }
        next.set(name, { version: r.version ?? '', body: d.body });
        changed.set(name, r.version ?? '');
      } catch (e) {
        error = `resources[${i}] "${name}": cannot decode ${typeUrl}: ${(e as Error).message}`;
      }
    });
    const removed = (res.removedResources ?? []).filter((n) => next.delete(n));
    const version = res.systemVersionInfo || nonce;
    if (!error) {
      try {
        const versions = new Map([...next].map(([n, h]) => [n, h.version]));
        error = this.opts.onResponse(typeUrl, [...next.values()].map((h) => h.body), version, { removed, versions });
      } catch (e) {
        error = `internal error applying ${typeUrl}: ${(e as Error).message}`;
      }
    }
    if (error === undefined) {
      st.held = next;
      this.stats.acks++;
      this.sendRequest(typeUrl, st, nonce);
    } else {
      this.stats.nacks++;
      this.log(`NACK ${typeUrl} nonce ${nonce}: ${error}`);
      this.sendRequest(typeUrl, st, nonce, error);
    }
  }
}
