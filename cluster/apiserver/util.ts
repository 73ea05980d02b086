// Small helpers for handling untyped JSON objects safely.
import { randomInt } from 'node:crypto';
import type { KubeObject, ObjectMeta } from '../../api/kube/types.js';

export type Json = Record<string, unknown>;

export function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Reads a dotted path ("spec.nodeName") from an object. */
export function getPath(obj: unknown, dotted: string): unknown {
  let cur: unknown = obj;
  for (const part of dotted.split('.')) {
    if (!isObj(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

/** Returns obj[key] as an object, creating it when absent. */
export function child(obj: Json, key: string): Json {
  const v = obj[key];
  if (isObj(v)) return v;
  const c: Json = {};
  obj[key] = c;
  return c;
}

export function childArray(obj: Json, key: string): unknown[] {
  const v = obj[key];
  return Array.isArray(v) ? v : [];
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

export function meta(obj: Json): ObjectMeta {
  return child(obj, 'metadata') as ObjectMeta;
}

export function asKube(obj: Json): KubeObject {
  meta(obj);
  return obj as KubeObject;
}

const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789'; // Kubernetes' rand.String alphabet

export function randomSuffix(n = 5): string {
  let s = '';
  for (let i = 0; i < n; i++) s += SUFFIX_ALPHABET[randomInt(SUFFIX_ALPHABET.length)];
  return s;
}

/** RFC 3339 without fractional seconds, as metav1.Time serializes. */
export function nowRfc3339(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObj(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}
