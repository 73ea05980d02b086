// Stage: send the request to the chosen host over the endpoint's keep-alive pool and
// stream the response back. Bodies are streamed both ways, never buffered.
import type http from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Pool } from 'undici';
import { downstreamResponseHeaders, hasBody, upstreamRequestHeaders } from './headers.js';
import { sendLocalReply } from './local-reply.js';
import type { StreamInfo } from './stream-info.js';

const CONNECT_FAILURES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN',
]);

function errorCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  return String(e?.code ?? e?.cause?.code ?? '');
}

export interface ForwardOptions {
  pool: Pool;
  /** Upstream path (after prefixRewrite) and Host (after hostRewriteLiteral). */
  path: string;
  hostRewrite?: string;
  timeoutMs?: number;
  /** Called once the upstream answered (status) or failed before answering (undefined). */
  onUpstreamResult?: (status: number | undefined, connectFailed: boolean) => void;
}

export async function forward(req: http.IncomingMessage, res: http.ServerResponse, info: StreamInfo, opts: ForwardOptions): Promise<void> {
  const abort = new AbortController();
  let timedOut = false;
  let downstreamGone = false;
  const onClose = (): void => {
    if (!res.writableFinished) {
      downstreamGone = true;
      abort.abort();
    }
  };
  res.on('close', onClose);
  const timer = opts.timeoutMs && opts.timeoutMs > 0
    ? setTimeout(() => { timedOut = true; abort.abort(); }, opts.timeoutMs)
    : undefined;

  let body: Transform | undefined;
  if (hasBody(req)) {
    body = new Transform({
      transform(chunk: Buffer, _enc, cb) { info.bytesReceived += chunk.length; cb(null, chunk); },
    });
    req.pipe(body);
  }

  let headersSent = false;
  try {
    const up = await opts.pool.request({
      path: opts.path,
      method: req.method as 'GET',
      headers: upstreamRequestHeaders(req, info.requestId, opts.hostRewrite),
      body,
      signal: abort.signal,
    });
    info.responseCode = up.statusCode;
    opts.onUpstreamResult?.(up.statusCode, false);
    res.writeHead(up.statusCode, downstreamResponseHeaders(up.headers));
    headersSent = true;
    up.body.on('data', (chunk: Buffer) => { info.bytesSent += chunk.length; });
    await pipeline(up.body, res);
  } catch (err) {
    if (downstreamGone) {
      info.responseFlags.push('DC');
      return;
    }
    if (headersSent) {
      // The response already started: all we can do is reset the downstream stream.
      info.responseFlags.push('UPE');
      res.destroy();
      return;
    }
    const code = errorCode(err);
    if (timedOut) {
      info.responseFlags.push('UT');
      info.responseCode = 504;
      opts.onUpstreamResult?.(undefined, false);
      info.bytesSent += sendLocalReply(res, 504, 'UT', 'upstream request timeout');
    } else if (CONNECT_FAILURES.has(code)) {
      info.responseFlags.push('UF');
      info.responseCode = 503;
      opts.onUpstreamResult?.(undefined, true);
      info.bytesSent += sendLocalReply(res, 503, 'UF',
        `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${code}`);
    } else {
      info.responseFlags.push('UC');
      info.responseCode = 503;
      opts.onUpstreamResult?.(undefined, false);
      info.bytesSent += sendLocalReply(res, 503, 'UC',
        `upstream connect error or disconnect/reset before headers. reset reason: connection termination (${code || (err as Error).message})`);
    }
  } finally {
    if (timer) clearTimeout(timer);
    res.off('close', onClose);
  }
}
