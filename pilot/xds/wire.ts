// Hand-encoded DiscoveryResponse / DeltaDiscoveryResponse bytes. The resources part of a
// response is encoded once and shared by every proxy that gets the same resources (a
// proxy class with the same subscription); only the few bytes that differ per proxy
// (version, nonce) are encoded per send. Protobuf fields may appear in any order and a
// message is the concatenation of its fields, so head + shared body is a valid message.
// Field numbers are envoy/service/discovery/v3/discovery.proto's.
import type { PackedResource } from './cache.js';

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited field (wire type 2). */
function lenField(field: number, bytes: Buffer): Buffer[] {
  return [varint((field << 3) | 2), varint(bytes.length), bytes];
}

function strField(field: number, s: string): Buffer[] {
  return s ? lenField(field, Buffer.from(s, 'utf8')) : [];
}

/** google.protobuf.Any: type_url = 1, value = 2. */
function anyBytes(r: PackedResource): Buffer {
  return Buffer.concat([...strField(1, r.any.typeUrl), ...lenField(2, r.any.value)]);
}

/** DiscoveryResponse.resources (field 2) for these resources. */
export function sotwBody(resources: readonly PackedResource[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of resources) parts.push(...lenField(2, anyBytes(r)));
  return Buffer.concat(parts);
}

/** A whole DiscoveryResponse: version_info = 1, type_url = 4, nonce = 5, plus the shared body. */
export function sotwResponse(body: Buffer, versionInfo: string, typeUrl: string, nonce: string): Buffer {
  return Buffer.concat([...strField(1, versionInfo), ...strField(4, typeUrl), ...strField(5, nonce), body]);
}

/** DeltaDiscoveryResponse.resources (field 2): Resource { version = 1, resource = 2, name = 3 }. */
export function deltaBody(resources: readonly PackedResource[], removed: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of resources) {
    const res = Buffer.concat([...strField(1, r.version), ...lenField(2, anyBytes(r)), ...strField(3, r.name)]);
    parts.push(...lenField(2, res));
  }
  for (const n of removed) parts.push(...strField(6, n)); // removed_resources = 6
  return Buffer.concat(parts);
}

/** A whole DeltaDiscoveryResponse: system_version_info = 1, type_url = 4, nonce = 5. */
export function deltaResponse(body: Buffer, systemVersion: string, typeUrl: string, nonce: string): Buffer {
  return Buffer.concat([...strField(1, systemVersion), ...strField(4, typeUrl), ...strField(5, nonce), body]);
}
