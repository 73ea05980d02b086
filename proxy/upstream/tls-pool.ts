// Pools whose connections are TLS (UpstreamTlsContext): HTTP/1.1 over undici with our own
// connector, so each new connection handshakes with the current workload certificate.
import { Pool } from 'undici';
import { Http1Pool, type UpstreamPool, type UpstreamRequest, type UpstreamResponse } from './upstream-pool.js';
import type { ConnectionOptions } from '../xds/resources/connection-options.js';
import type { UpstreamTlsConfig } from '../xds/resources/tls-context.js';
import type { SecretResolver } from '../security/sds.js';
import { connectTls, UPSTREAM_TLS_ERROR } from './tls-connector.js';

/** HTTP/2 inside TLS is not wired yet: refuse loudly rather than fall back to plaintext. */
class UnsupportedTlsPool implements UpstreamPool {
  readonly protocol = 'http2';
  send(_req: UpstreamRequest): Promise<UpstreamResponse> {
    const msg = `${UPSTREAM_TLS_ERROR}: HTTP/2 over an upstream TLS transport socket is not supported yet`;
    return Promise.reject(Object.assign(new Error(msg), { code: msg }));
  }
  async close(): Promise<void> { /* nothing open */ }
  async destroy(): Promise<void> { /* nothing open */ }
}

export function tlsPool(host: string, port: number, connectTimeoutMs: number, protocol: 'http1' | 'http2', conn: ConnectionOptions, tls: UpstreamTlsConfig, secrets: SecretResolver): UpstreamPool {
  if (protocol === 'http2') return new UnsupportedTlsPool();
  // undici speaks plain HTTP/1.1 over whatever socket the connector hands it.
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new Http1Pool(new Pool(origin, {
    connect: (_opts, cb) => {
      connectTls(host, port, tls, secrets, connectTimeoutMs).then((s) => cb(null, s.socket), (err: Error) => cb(err, null));
    },
    keepAliveTimeout: conn.idleTimeoutMs, keepAliveMaxTimeout: Math.max(conn.idleTimeoutMs, 1000),
    maxRequestsPerClient: conn.maxRequestsPerConnection > 1 ? conn.maxRequestsPerConnection - 1 : undefined, pipelining: 1,
  }), conn.maxRequestsPerConnection === 1);
}
