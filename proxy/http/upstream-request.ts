// One attempt of a request to one host: send the headers and body over the host's pool and
// come back with the response head (body not yet read) or why there is none. The router
// decides what to do with either; nothing here writes to the downstream.
import type { Readable } from 'node:stream';
import type http from 'node:http';
import type { UpstreamPool, UpstreamResponse } from '../upstream/upstream-pool.js';
import { Cancel } from './cancel.js';
import { RequestBodyTee } from './request-body.js';

const CONNECT_FAILURES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'REFUSED_STREAM',
]);

export type AttemptFailure = 'connect-failure' | 'reset' | 'per-try-timeout' | 'aborted';

export type AttemptResult =
  | { kind: 'response'; status: number; headers: Record<string, string | string[] | undefined>; body: UpstreamResponse['body']; trailers: UpstreamResponse['trailers']; discard: () => Promise<void>; peerPrincipal?: string }
  | { kind: 'error'; failure: AttemptFailure; code: string };

function errorCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown }; message?: unknown };
  return String(e?.code ?? e?.cause?.code ?? e?.message ?? '');
}

/**
 * The request body as the router holds it: a body that had fully arrived by routing time is a
 * buffer (replayable if within the limit); any other body streams through a tee that keeps a
 * copy up to the limit.
 */
export type RequestBody =
  | { kind: 'none' }
  | { kind: 'buffer'; data: Buffer; replayable: boolean }
  | { kind: 'stream'; tee: RequestBodyTee };

/** Takes over the downstream body: Envoy streams it to the upstream and keeps a copy up to `limit` bytes. */
export function takeBody(req: http.IncomingMessage, limit: number, onBytes: (n: number) => void): RequestBody {
  // HTTP/1.1 bodies that came with the headers (most small ones) are already parsed: no tee needed.
  if (req.httpVersionMajor === 1 && req.complete) {
    const chunks: Buffer[] = [];
    for (let c: Buffer | null = req.read() as Buffer | null; c !== null; c = req.read() as Buffer | null) chunks.push(c);
    const data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    onBytes(data.length);
    return { kind: 'buffer', data, replayable: data.length <= limit };
  }
  return { kind: 'stream', tee: new RequestBodyTee(req, limit, onBytes) };
}

export interface AttemptOptions {
  pool: UpstreamPool;
  method: string;
  path: string;
  headers: string[];
  body?: Buffer | Readable;
  /** Aborts the attempt from outside (global timeout, downstream gone). */
  signal: Cancel;
  perTryTimeoutMs?: number;
  /** Envoy starts the per-try timer once the downstream request is complete; this calls back then. */
  whenBodyComplete?: (cb: () => void) => void;
}

export async function attempt(o: AttemptOptions): Promise<AttemptResult> {
  if (o.signal.aborted) return { kind: 'error', failure: 'aborted', code: 'aborted' };
  // Without a per-try timeout the request's own token is enough: no second token per attempt.
  let signal = o.signal;
  let perTryFired = false;
  let timer: NodeJS.Timeout | undefined;
  let settled = false;
  const onOuter = (): void => signal.abort();
  if (o.perTryTimeoutMs) {
    signal = new Cancel();
    o.signal.once('abort', onOuter);
    const ms = o.perTryTimeoutMs;
    const arm = (): void => { if (!settled) timer = setTimeout(() => { perTryFired = true; signal.abort(); }, ms); };
    if (o.whenBodyComplete) o.whenBodyComplete(arm);
    else arm();
  }
  try {
    const up = await o.pool.send({
      path: o.path,
      method: o.method,
      headers: o.headers,
      body: o.body,
      signal,
    });
    return { kind: 'response', status: up.statusCode, headers: up.headers, body: up.body, trailers: up.trailers, discard: up.discard, peerPrincipal: up.peerPrincipal };
  } catch (err) {
    if (perTryFired) return { kind: 'error', failure: 'per-try-timeout', code: 'per_try_timeout' };
    if (o.signal.aborted) return { kind: 'error', failure: 'aborted', code: 'aborted' };
    const code = errorCode(err);
    return { kind: 'error', failure: CONNECT_FAILURES.has(code) || code.startsWith('upstream_tls_error') ? 'connect-failure' : 'reset', code };
  } finally {
    // The per-try timer covers the wait for the response head; the route timeout covers the rest.
    settled = true;
    if (o.perTryTimeoutMs) {
      if (timer) clearTimeout(timer);
      o.signal.off('abort', onOuter);
    }
  }
}
