// Header rewriting between downstream and upstream: drop hop-by-hop headers (RFC 9110 7.6.1)
// and add the ones a mesh proxy owns.
import { randomUUID } from 'node:crypto';
import type http from 'node:http';

const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect',
]);

const NO_TOKENS: ReadonlySet<string> = new Set();

function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> {
  // Nearly every request says nothing or just keep-alive/close: no Set, no split.
  if (value === undefined || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive') return NO_TOKENS;
  const v = Array.isArray(value) ? value.join(',') : value;
  return new Set(v.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
}

/**
 * Flat [name, value, ...] list for undici, keeping repeated headers; sets x-request-id if
 * absent. x-forwarded-proto is kept when the request has one, else it says how the request
 * reached this proxy, as Envoy sets it: https over a TLS downstream connection, else http.
 */
export function upstreamRequestHeaders(req: http.IncomingMessage, requestId: string, hostRewrite?: string, downstreamTls = false): string[] {
  const drop = connectionTokens(req.headers.connection);
  const out: string[] = [];
  const raw = req.rawHeaders;
  let sawHost = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    // HTTP/2 pseudo-headers become the request line; :authority is the Host (below).
    if (name.charCodeAt(0) === 58) continue;
    // `te: trailers` is end to end in practice: gRPC servers require it.
    if (name === 'te' && raw[i + 1].trim().toLowerCase() === 'trailers') { out.push('te', 'trailers'); continue; }
    if (HOP_BY_HOP.has(name) || drop.has(name) || name === 'x-forwarded-proto' || name === 'x-request-id') continue;
    if (name === 'host') {
      sawHost = true;
      if (hostRewrite !== undefined) continue;
    }
    out.push(raw[i], raw[i + 1]);
  }
  if (hostRewrite !== undefined) out.push('host', hostRewrite);
  else if (req.httpVersionMajor === 2 && !sawHost && typeof req.headers[':authority'] === 'string') out.push('host', req.headers[':authority']);
  out.push('x-forwarded-proto', firstValue(req.headers['x-forwarded-proto']) ?? (downstreamTls ? 'https' : 'http'));
  out.push('x-request-id', requestId);
  return out;
}

export function requestIdOf(req: http.IncomingMessage): string {
  return firstValue(req.headers['x-request-id']) || randomUUID();
}

export function firstValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function downstreamResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const drop = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || drop.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Whether a request has a body to forward (HTTP/1.1 framing: content-length or chunked). */
export function hasBody(req: http.IncomingMessage): boolean {
  // HTTP/2: a body exists unless the HEADERS frame ended the stream.
  const h2 = (req as { stream?: { endAfterHeaders?: boolean } }).stream;
  if (req.httpVersionMajor === 2 && h2) return h2.endAfterHeaders !== true;
  const cl = req.headers['content-length'];
  return (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined;
}
