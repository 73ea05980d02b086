// How EtcdStore lays objects out in etcd: key = prefix + store key (Kubernetes' own
// `/registry/<resource>/<namespace>/<name>` when the prefix is empty), value = the object's
// JSON without metadata.resourceVersion, which is derived from the key's modRevision on read
// (as the other stores do), so a value never disagrees with its revision.
import type { IKeyValue } from 'etcd3';
import { materialize } from './memory.js';
import type { JsonObject } from './types.js';

export function encodeValue(value: JsonObject): Buffer {
  const meta = value.metadata;
  if (typeof meta === 'object' && meta !== null && 'resourceVersion' in meta) {
    const { resourceVersion: _rv, ...rest } = meta as JsonObject;
    return Buffer.from(JSON.stringify({ ...value, metadata: rest }));
  }
  return Buffer.from(JSON.stringify(value));
}

/** The stored object stamped with resourceVersion = revision. */
export function decodeValue(kv: IKeyValue, revision = Number(kv.mod_revision)): JsonObject {
  return materialize(kv.value.toString('utf8'), revision);
}

/** etcd's prefix range end: the prefix with its last byte incremented (0xff bytes dropped). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) { end[i]++; return end.subarray(0, i + 1); }
  }
  return Buffer.from([0]); // the empty prefix: every key
}

/** Maps gRPC int64 fields (strings) to numbers; revisions stay far below 2^53. */
export function rev(v: string | number | undefined): number {
  return v === undefined ? 0 : Number(v);
}
