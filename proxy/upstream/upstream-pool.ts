// What one attempt needs from a connection pool, whatever the HTTP version: send a request
// and get the response head, a body stream and (once the body ended) its trailers.
import type { Readable } from 'node:stream';
import type { Pool } from 'undici';
import type { CancelSignal } from '../http/cancel.js';

export interface UpstreamRequest {
  method: string;
  path: string;
  /** Flat [name, value, ...] list, hop-by-hop headers already removed. */
  headers: string[];
  body?: Buffer | Readable;
  signal: CancelSignal;
}

export interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** Trailers, complete once the body has ended (gRPC's grpc-status travels here). */
  trailers: Record<string, string | string[] | undefined>;
  /** Reads and drops the rest of the body so the connection can be reused. */
  discard(): Promise<void>;
  /** Upstream TLS: the server's verified URI SAN (outbound destination_principal). */
  peerPrincipal?: string;
}

export interface UpstreamPool {
  readonly protocol: 'http1' | 'http2';
  send(req: UpstreamRequest): Promise<UpstreamResponse>;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/** HTTP/1.1 keep-alive pool backed by undici. */
export class Http1Pool implements UpstreamPool {
  readonly protocol = 'http1';
  /** resetEach: close the connection after every request (max_requests_per_connection 1). */
  /** peer: the URI SAN verified by the latest TLS handshake (all connections go to one endpoint). */
  constructor(private readonly pool: Pool, private readonly resetEach = false, private readonly peer?: () => string | undefined) {}

  async send(req: UpstreamRequest): Promise<UpstreamResponse> {
    const up = await this.pool.request({
      path: req.path,
      method: req.method as 'GET',
      headers: req.headers,
      body: req.body,
      reset: this.resetEach || undefined,
      // undici takes any EventEmitter with `aborted` and an 'abort' event.
      signal: req.signal as unknown as AbortSignal,
    });
    return {
      statusCode: up.statusCode, headers: up.headers, body: up.body, trailers: up.trailers,
      discard: () => up.body.dump().then(() => undefined), peerPrincipal: this.peer?.(),
    };
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  destroy(): Promise<void> {
    return this.pool.destroy();
  }
}
