// Downstream TLS for a filter chain with a DownstreamTlsContext: handshake with the
// current workload certificate (SDS `default`), verify the client's chain against the
// roots and its SANs against matchSubjectAltNames, pick ALPN. A client whose ALPN list
// shares nothing with ours still completes the handshake without ALPN, as with Envoy.
import type net from 'node:net';
import tls from 'node:tls';
import type { DownstreamTlsConfig } from '../xds/resources/tls-context.js';
import { peerCertificateInfo, type PeerCertificateInfo, type SecretResolver } from '../security/sds.js';

/** The downstream side of a TLS connection, as XFCC, RBAC, metrics and the access log see it. */
export interface DownstreamPeer extends Partial<PeerCertificateInfo> {
  /** The URI SAN of the certificate this proxy presented (XFCC By=). */
  localUri?: string;
  sni?: string;
  alpn?: string;
  /** True when the client presented a certificate that verified. */
  mtls: boolean;
}

export class DownstreamTlsError extends Error {}

/** The first of our protocols the client offered (Envoy's server-preference selection). */
export function selectAlpn(ours: readonly string[], offered: readonly string[]): string | undefined {
  return ours.find((p) => offered.includes(p));
}

export function terminateTls(
  socket: net.Socket, cfg: DownstreamTlsConfig, secrets: SecretResolver, offeredAlpn: readonly string[], sni: string | undefined, timeoutMs: number,
): Promise<{ socket: tls.TLSSocket; peer: DownstreamPeer }> {
  const secureContext = secrets.secureContext(cfg);
  const chosen = selectAlpn(cfg.alpn, offeredAlpn);
  const verify = cfg.roots !== undefined;
  const t = new tls.TLSSocket(socket, {
    isServer: true,
    secureContext,
    requestCert: verify,
    rejectUnauthorized: cfg.requireClientCertificate,
    // Offering only the protocol we will pick keeps OpenSSL from failing a no-overlap handshake.
    ...(chosen ? { ALPNProtocols: [chosen] } : {}),
  });
  return new Promise((resolve, reject) => {
    const timer = timeoutMs > 0 ? setTimeout(() => fail(new DownstreamTlsError('TLS handshake timeout')), timeoutMs) : undefined;
    const fail = (err: Error): void => {
      if (timer) clearTimeout(timer);
      t.destroy();
      socket.destroy();
      reject(err);
    };
    t.once('error', fail);
    t.once('secure', () => {
      if (timer) clearTimeout(timer);
      t.off('error', fail);
      const raw = t.getPeerCertificate()?.raw;
      let peer: DownstreamPeer = { mtls: false, sni, alpn: t.alpnProtocol || undefined, localUri: secrets.ownUri() };
      if (raw && raw.length > 0) {
        // A TLSSocket made without a tls.Server does not set `authorized`: ask OpenSSL's verdict.
        const handle = (t as unknown as { _handle?: { verifyError(): Error | null } })._handle;
        const verifyError = handle ? handle.verifyError() : new Error('no TLS handle');
        if (verifyError) return fail(new DownstreamTlsError(`client certificate rejected: ${verifyError.message}`));
        const info = peerCertificateInfo(raw);
        if (cfg.sanMatchers.length > 0) {
          const sans = [...info.uriSans, ...info.dnsSans];
          if (!cfg.sanMatchers.some((m) => sans.some((s) => m.test(s)))) {
            return fail(new DownstreamTlsError(`client certificate SANs ${sans.join(', ') || '(none)'} match none of ${cfg.sanMatchers.map((m) => m.text).join(', ')}`));
          }
        }
        peer = { ...peer, ...info, mtls: true };
      } else if (cfg.requireClientCertificate) {
        return fail(new DownstreamTlsError('client certificate required'));
      }
      resolve({ socket: t, peer });
    });
  });
}
