// Narrowing helpers for decoded protos (plain objects from unpackAny). Each collects
// errors with the field path instead of throwing, so one NACK can list every problem.
import net from 'node:net';

export type Obj = Record<string, unknown>;

export class FieldErrors {
  readonly list: string[] = [];
  constructor(readonly resource: string) {}
  add(field: string, message: string): void {
    this.list.push(`${this.resource}: ${field}: ${message}`);
  }
  get ok(): boolean {
    return this.list.length === 0;
  }
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(v: unknown): Obj | undefined {
  return isObj(v) ? v : undefined;
}

export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Numbers may arrive as numbers or, for 64-bit fields, strings. */
export function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v !== '' && !Number.isNaN(Number(v))) return Number(v);
  return undefined;
}

/** google.protobuf wrapper types (UInt32Value, BoolValue): `{ value }`, or the bare value. */
export function wrapped(v: unknown): unknown {
  return isObj(v) ? v.value : v;
}

/** google.protobuf.Duration as milliseconds: `{ seconds, nanos }` or "1.5s". */
export function durationMs(v: unknown): number | undefined {
  if (typeof v === 'string') {
    const m = /^(-?\d+(?:\.\d+)?)s$/.exec(v);
    return m ? Number(m[1]) * 1000 : undefined;
  }
  if (isObj(v)) return (num(v.seconds) ?? 0) * 1000 + (num(v.nanos) ?? 0) / 1e6;
  return undefined;
}

export interface HostPort {
  address: string;
  port: number;
}

/** envoy.config.core.v3.Address with a socketAddress; records errors under `field`. */
export function socketAddress(v: unknown, field: string, errors: FieldErrors, allowHostname = false): HostPort | undefined {
  const sa = obj(obj(v)?.socketAddress);
  if (!sa) {
    errors.add(`${field}.socketAddress`, 'required');
    return undefined;
  }
  const address = str(sa.address);
  const port = num(sa.portValue) ?? 0;
  let ok = true;
  if (!address) {
    errors.add(`${field}.socketAddress.address`, 'required');
    ok = false;
  } else if (net.isIP(address) === 0 && !(allowHostname && /^[A-Za-z0-9.-]+$/.test(address))) {
    errors.add(`${field}.socketAddress.address`, `"${address}" is not an IP address`);
    ok = false;
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    errors.add(`${field}.socketAddress.portValue`, `${String(sa.portValue)} is not a port`);
    ok = false;
  }
  return ok && address ? { address, port } : undefined;
}
