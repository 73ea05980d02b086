// A stable hash of a decoded xDS message: canonical JSON (object keys sorted) through
// sha256. Equal content gives an equal hash whatever order the fields were written in, so a
// push that re-sends a resource unchanged (a new version_info, the same config) is seen as
// unchanged.
import { createHash } from 'node:crypto';

function canonical(v: unknown, out: string[]): void {
  if (v === null || v === undefined) { out.push('null'); return; }
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) { out.push(`"b:${Buffer.from(v).toString('base64')}"`); return; }
  if (Array.isArray(v)) {
    out.push('[');
    v.forEach((x, i) => { if (i) out.push(','); canonical(x, out); });
    out.push(']');
    return;
  }
  if (typeof v === 'object') {
    out.push('{');
    const keys = Object.keys(v as object).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort();
    keys.forEach((k, i) => {
      if (i) out.push(',');
      out.push(JSON.stringify(k), ':');
      canonical((v as Record<string, unknown>)[k], out);
    });
    out.push('}');
    return;
  }
  out.push(typeof v === 'bigint' ? `"${v.toString()}"` : JSON.stringify(v));
}

export function contentHash(message: unknown): string {
  const out: string[] = [];
  canonical(message, out);
  return createHash('sha256').update(out.join('')).digest('base64');
}
