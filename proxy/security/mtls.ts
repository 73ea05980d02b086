// TLS options for Istio-style mTLS between sidecars: both sides present their workload
// certificate, verify the peer's chain against the mesh roots, and the client checks that
// the server's URI SAN is one of the SPIFFE ids pilot says the destination runs.
import type net from 'node:net';
import tls from 'node:tls';
import { uriSansFromAltNames } from '../../api/security/spiffe.js';
import type { WorkloadCertManager } from './cert-manager.js';

/** ALPN Istio offers between sidecars (the peer-metadata exchange, then plain istio). */
export const ISTIO_ALPN = ['istio-peer-exchange', 'istio'];

/** Server side: require and verify a client certificate. The material is the manager's current one. */
export function serverTlsOptions(mgr: WorkloadCertManager, alpn: string[] = ISTIO_ALPN): tls.TlsOptions {
  return { ...mgr.tlsMaterial(), requestCert: true, rejectUnauthorized: true, ALPNProtocols: alpn };
}

/**
 * Keeps a tls.Server on the latest certificate: each rotation swaps the server's context,
 * so new handshakes use the new certificate and established connections are left alone.
 * Returns a function that stops following.
 */
export function followRotation(server: tls.Server, mgr: WorkloadCertManager): () => void {
  const onRotated = (): void => server.setSecureContext(mgr.tlsMaterial());
  mgr.on('rotated', onRotated);
  return () => { mgr.off('rotated', onRotated); };
}

/** A checkServerIdentity that accepts the server only if one of its URI SANs is expected. */
export function spiffeServerIdentityCheck(expected: readonly string[]): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const got = uriSansFromAltNames(cert.subjectaltname);
    if (got.some((u) => expected.includes(u))) return undefined;
    const err = new Error(`peer identity ${got.length ? got.join(', ') : '(no URI SAN)'} is not one of the expected ${expected.join(', ')}`);
    return Object.assign(err, { code: 'ERR_TLS_CERT_ALTNAME_INVALID', reason: err.message });
  };
}

/** Client side: present the workload certificate, verify the chain and the server's SPIFFE id. */
export function clientTlsOptions(mgr: WorkloadCertManager, expectedServerIds: readonly string[], alpn: string[] = ISTIO_ALPN): tls.ConnectionOptions {
  return {
    secureContext: mgr.secureContext(),
    rejectUnauthorized: true,
    checkServerIdentity: spiffeServerIdentityCheck(expectedServerIds),
    ALPNProtocols: alpn,
  };
}

/** The SPIFFE id (first spiffe:// URI SAN) of the peer of a TLS socket. */
export function peerSpiffeId(socket: tls.TLSSocket | net.Socket): string | undefined {
  if (!(socket instanceof tls.TLSSocket)) return undefined;
  const cert = socket.getPeerCertificate();
  return uriSansFromAltNames(cert?.subjectaltname).find((u) => u.startsWith('spiffe://'));
}
