// An immutable view of all applied xDS config. A new snapshot replaces the old one in a
// single assignment, so a connection or request that captured a snapshot (or objects from
// it) keeps a consistent config until it finishes.
import type { ClusterConfig } from './resources/cluster.js';
import type { LoadAssignment } from './resources/endpoint.js';
import type { Obj } from './resources/fields.js';
import type { ListenerConfig } from './resources/listener.js';
import type { RouteTable } from './resources/route.js';
import type { TlsSecret } from './resources/secret.js';

export interface Versioned<T> {
  value: T;
  version: string;
  lastUpdated: Date;
  raw: Obj;
}

export type XdsKind = 'lds' | 'rds' | 'cds' | 'eds' | 'sds';

export interface ConfigSnapshot {
  readonly listeners: ReadonlyMap<string, Versioned<ListenerConfig>>;
  /** Listeners by "ip:port", for handing off connections by their original destination. */
  readonly listenersByAddress: ReadonlyMap<string, ListenerConfig>;
  readonly routes: ReadonlyMap<string, Versioned<RouteTable>>;
  readonly clusters: ReadonlyMap<string, Versioned<ClusterConfig>>;
  /** ClusterLoadAssignments by their cluster (service) name. */
  readonly assignments: ReadonlyMap<string, Versioned<LoadAssignment>>;
  /** SDS secrets fetched over ADS by name (the proxy's own `default`/`ROOTCA` are not here). */
  readonly secrets: ReadonlyMap<string, Versioned<TlsSecret>>;
  readonly versions: Readonly<Record<XdsKind, string>>;
}

export const EMPTY_SNAPSHOT: ConfigSnapshot = {
  listeners: new Map(),
  listenersByAddress: new Map(),
  routes: new Map(),
  clusters: new Map(),
  assignments: new Map(),
  secrets: new Map(),
  versions: { lds: '', rds: '', cds: '', eds: '', sds: '' },
};

export function addressKey(address: string, port: number): string {
  return `${address}:${port}`;
}

export function indexListeners(listeners: ReadonlyMap<string, Versioned<ListenerConfig>>): Map<string, ListenerConfig> {
  const index = new Map<string, ListenerConfig>();
  for (const { value } of listeners.values()) {
    const key = addressKey(value.address.address, value.address.port);
    if (!index.has(key)) index.set(key, value);
  }
  return index;
}
