// Pools whose connections are TLS (UpstreamTlsContext): HTTP/1.1 over undici or HTTP/2 over
// node:http2, both with our own connector, so each new connection handshakes with the current
// workload certificate and checks the server's SANs.
import { Pool } from 'undici';
import { Http2Pool } from './h2-pool.js';
import { Http1Pool, type UpstreamPool } from './upstream-pool.js';
import type { ConnectionOptions } from '../xds/resources/connection-options.js';
import type { UpstreamTlsConfig } from '../xds/resources/tls-context.js';
import type { SecretResolver } from '../security/sds.js';
import { connectTls } from './tls-connector.js';

export function tlsPool(host: string, port: number, connectTimeoutMs: number, protocol: 'http1' | 'http2', conn: ConnectionOptions, tls: UpstreamTlsConfig, secrets: SecretResolver): UpstreamPool {
  // HTTP/2 with prior knowledge inside the tunnel: Istio's ALPN is `istio`, so h2 is not
  // negotiated; only a context without any ALPN asks for h2, as Envoy does for h2 clusters.
  if (protocol === 'http2') {
    const h2tls = tls.alpn.length > 0 ? tls : { ...tls, alpn: ['h2'] };
    return new Http2Pool(host, port, connectTimeoutMs, conn, () => connectTls(host, port, h2tls, secrets, connectTimeoutMs));
  }
  let peerUri: string | undefined;
  // undici speaks plain HTTP/1.1 over whatever socket the connector hands it.
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new Http1Pool(new Pool(origin, {
    connect: (_opts, cb) => {
      connectTls(host, port, tls, secrets, connectTimeoutMs).then((s) => { peerUri = s.peerUri; cb(null, s.socket); }, (err: Error) => cb(err, null));
    },
    keepAliveTimeout: conn.idleTimeoutMs, keepAliveMaxTimeout: Math.max(conn.idleTimeoutMs, 1000),
    maxRequestsPerClient: conn.maxRequestsPerConnection > 1 ? conn.maxRequestsPerConnection - 1 : undefined, pipelining: 1,
  }), conn.maxRequestsPerConnection === 1, () => peerUri);
}
