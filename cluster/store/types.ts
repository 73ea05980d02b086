// The cluster store contract: an etcd-v3-like revisioned key-value store of JSON objects.
// Every write bumps one global revision; each key remembers the revision that last
// modified it (modRevision), which the apiserver exposes as metadata.resourceVersion.
// Methods are async so a networked backend (etcd) can implement the same interface.

export type JsonObject = Record<string, unknown>;

export type StoreEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: StoreEventType;
  key: string;
  /** The revision of this change (for DELETED: the revision of the deletion). */
  revision: number;
  /** The object after the change; for DELETED its last state, stamped with the deletion revision. */
  object: JsonObject;
  /** The object before the change (MODIFIED and DELETED). */
  prevObject?: JsonObject;
}

export interface ListResult {
  items: JsonObject[];
  /** The store revision the list was read at; watch from it to see every later change. */
  revision: number;
}

export interface ListOptions { revision?: number }

export type StoreErrorCode = 'NotFound' | 'AlreadyExists' | 'Conflict' | 'Compacted';

export class StoreError extends Error {
  constructor(readonly code: StoreErrorCode, readonly key: string, message: string) {
    super(message);
  }
}

export function isStoreError(e: unknown, code: StoreErrorCode): e is StoreError {
  return e instanceof StoreError && e.code === code;
}

export type CancelWatch = () => void;

export interface Store {
  get(key: string): Promise<JsonObject | undefined>;
  /**
   * Every key starting with prefix, in key order, with the revision they were read at. With
   * opts.revision: the keys as they were at that revision (a consistent snapshot, as etcd's
   * range at a revision); Compacted when the store no longer keeps history back to it.
   */
  list(prefix: string, opts?: ListOptions): Promise<ListResult>;
  /** Fails with AlreadyExists if the key exists. */
  create(key: string, value: JsonObject): Promise<JsonObject>;
  /** Compare-and-swap when expectedModRevision is given (Conflict on mismatch); NotFound if absent. */
  update(key: string, value: JsonObject, expectedModRevision?: number): Promise<JsonObject>;
  /** Returns the deleted object stamped with the deletion revision. */
  delete(key: string, expectedModRevision?: number): Promise<JsonObject>;
  /**
   * Calls onEvent for every change under prefix with revision > fromRevision, in order:
   * first the buffered history, then live changes. Throws StoreError('Compacted') when
   * changes after fromRevision are no longer kept.
   */
  watch(prefix: string, fromRevision: number, onEvent: (ev: StoreEvent) => void): Promise<CancelWatch>;
  revision(): Promise<number>;
  close(): Promise<void>;
}

export const RESOURCE_VERSION_FIELD = 'resourceVersion';
