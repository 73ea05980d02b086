// One attempt of a request to one host: send the headers and body over the host's pool and
// come back with the response head (body not yet read) or why there is none. The router
// decides what to do with either; nothing here writes to the downstream.
import { Readable } from 'node:stream';
import type http from 'node:http';
import type { UpstreamPool, UpstreamResponse } from '../upstream/upstream-pool.js';
import { Cancel } from './cancel.js';

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

/** The request body as the router holds it: a buffer can be replayed for a retry, a stream cannot. */
export type RequestBody = { kind: 'none' } | { kind: 'buffer'; data: Buffer } | { kind: 'stream'; stream: Readable };

/**
 * Reads the body into memory up to `limit` bytes (Envoy buffers for retries up to the
 * connection buffer limit, 1 MiB); past that it hands back a stream and retries are off.
 */
export function readBody(req: http.IncomingMessage, limit: number, onBytes: (n: number) => void): Promise<RequestBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      onBytes(c.length);
      chunks.push(c);
      size += c.length;
      if (size > limit) {
        req.pause();
        cleanup();
        const rest = req;
        async function* replay(): AsyncGenerator<Buffer> {
          yield* chunks;
          for await (const c of rest) {
            onBytes((c as Buffer).length);
            yield c as Buffer;
          }
        }
        resolve({ kind: 'stream', stream: Readable.from(replay()) });
      }
    };
    const onEnd = (): void => { cleanup(); resolve({ kind: 'buffer', data: Buffer.concat(chunks) }); };
    const onError = (err: Error): void => { cleanup(); reject(err); };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

export interface AttemptOptions {
  pool: UpstreamPool;
  method: string;
  path: string;
  headers: string[];
  body: RequestBody;
  /** Aborts the attempt from outside (global timeout, downstream gone). */
  signal: Cancel;
  perTryTimeoutMs?: number;
}

export async function attempt(o: AttemptOptions): Promise<AttemptResult> {
  if (o.signal.aborted) return { kind: 'error', failure: 'aborted', code: 'aborted' };
  // Without a per-try timeout the request's own token is enough: no second token per attempt.
  let signal = o.signal;
  let perTryFired = false;
  let timer: NodeJS.Timeout | undefined;
  const onOuter = (): void => signal.abort();
  if (o.perTryTimeoutMs) {
    signal = new Cancel();
    o.signal.once('abort', onOuter);
    timer = setTimeout(() => { perTryFired = true; signal.abort(); }, o.perTryTimeoutMs);
  }
  try {
    const up = await o.pool.send({
      path: o.path,
      method: o.method,
      headers: o.headers,
      body: o.body.kind === 'buffer' ? o.body.data : o.body.kind === 'stream' ? o.body.stream : undefined,
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
    if (timer) {
      clearTimeout(timer);
      o.signal.off('abort', onOuter);
    }
  }
}
