// Upstream TLS: connect TCP, then handshake with the UpstreamTlsContext (SNI, ALPN, the
// workload certificate from SDS `default`, roots from `ROOTCA` or files) and check the
// server's SANs against matchSubjectAltNames. Failures carry a code starting with
// `upstream_tls_error:` naming what failed, so the router's local reply explains it.
import net from 'node:net';
import tls from 'node:tls';
import type { UpstreamTlsConfig } from '../xds/resources/tls-context.js';
import { peerCertificateInfo, type SecretResolver } from '../security/sds.js';

export const UPSTREAM_TLS_ERROR = 'upstream_tls_error';

function tlsError(reason: string): Error {
  const msg = `${UPSTREAM_TLS_ERROR}: ${reason}`;
  return Object.assign(new Error(msg), { code: msg });
}

export interface UpstreamTlsSocket {
  socket: tls.TLSSocket;
  /** The server's verified URI SAN (outbound destination_principal). */
  peerUri?: string;
}

/** Connects to host:port and completes the TLS handshake; rejects with a TCP error or an upstream_tls_error. */
export function connectTls(host: string, port: number, cfg: UpstreamTlsConfig, secrets: SecretResolver, timeoutMs: number): Promise<UpstreamTlsSocket> {
  return new Promise((resolve, reject) => {
    let secureContext: tls.SecureContext;
    try {
      secureContext = secrets.secureContext(cfg);
    } catch (e) {
      reject(tlsError((e as Error).message));
      return;
    }
    const tcp = net.connect({ host, port, noDelay: true });
    let done = false;
    const timer = setTimeout(() => fail(Object.assign(new Error(`connect timeout to ${host}:${port}`), { code: 'UND_ERR_CONNECT_TIMEOUT' })), timeoutMs);
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      tcp.destroy();
      reject(err);
    };
    tcp.once('error', fail);
    tcp.once('connect', () => {
      tcp.off('error', fail);
      const t = tls.connect({
        socket: tcp, secureContext, servername: cfg.sni, ALPNProtocols: cfg.alpn.length > 0 ? cfg.alpn : undefined,
        rejectUnauthorized: cfg.roots !== undefined,
        // SANs are checked below against matchSubjectAltNames, not against a host name.
        checkServerIdentity: () => undefined,
      });
      t.once('error', (e: NodeJS.ErrnoException) => fail(tlsError(`handshake failed: ${e.code ?? ''} ${e.message}`.trim())));
      t.once('secureConnect', () => {
        const raw = t.getPeerCertificate()?.raw;
        const info = raw ? peerCertificateInfo(raw) : undefined;
        if (cfg.sanMatchers.length > 0) {
          const sans = info ? [...info.uriSans, ...info.dnsSans] : [];
          if (!cfg.sanMatchers.some((m) => sans.some((s) => m.test(s)))) {
            t.destroy();
            return fail(tlsError(`SAN mismatch: server presented ${sans.join(', ') || '(no SAN)'}, expected ${cfg.sanMatchers.map((m) => m.text).join(' or ')}`));
          }
        }
        if (done) return;
        done = true;
        clearTimeout(timer);
        // From here the pool's own handlers own the socket's errors.
        t.removeAllListeners('error');
        t.on('error', () => undefined);
        resolve({ socket: t, peerUri: info?.uriSans.find((u) => u.startsWith('spiffe://')) ?? info?.uriSans[0] });
      });
    });
  });
}
