// The proxy's own SDS: resolves the secret names Istio's agent serves (`default`: the
// workload certificate chain and key; `ROOTCA`: the trust bundle) from the cert manager, and
// inline/file material from the TLS context itself. A SecureContext is built once per
// (TLS settings, certificate serial) and rebuilt after a rotation, so new handshakes use the
// new certificate while established connections keep theirs.
import tls from 'node:tls';
import { createHash, X509Certificate } from 'node:crypto';
import type { WorkloadCert } from './cert-manager.js';
import type { CommonTlsConfig } from '../xds/resources/tls-context.js';

/** What SDS `default` / `ROOTCA` come from: the WorkloadCertManager, or a fixed certificate. */
export interface CertificateSource {
  readonly spiffeId: string;
  current(): WorkloadCert;
}

export class SecretUnavailableError extends Error {
  readonly code = 'SECRET_UNAVAILABLE';
}

export class SecretResolver {
  private readonly contexts = new Map<string, { version: string; ctx: tls.SecureContext }>();

  constructor(private readonly source?: CertificateSource) {}

  /** The workload certificate, when the proxy has one yet. */
  workloadCert(): WorkloadCert | undefined {
    try {
      return this.source?.current();
    } catch {
      return undefined;
    }
  }

  /** The SPIFFE URI of the certificate this proxy presents (XFCC By=, destination_principal). */
  ownUri(): string | undefined {
    return this.workloadCert() ? this.source?.spiffeId : undefined;
  }

  private material(cfg: CommonTlsConfig): { key?: string; cert?: string; ca?: string[]; version: string } {
    let key: string | undefined;
    let cert: string | undefined;
    let ca: string[] | undefined;
    let version = '';
    const needsSds = cfg.certificate?.kind === 'sds' || cfg.roots?.kind === 'sds';
    const w = needsSds ? this.workloadCert() : undefined;
    if (needsSds && !w) throw new SecretUnavailableError('SDS secret "default"/"ROOTCA": no workload certificate yet');
    if (cfg.certificate?.kind === 'sds' && w) { key = w.keyPem; cert = w.certChainPem; }
    else if (cfg.certificate?.kind === 'static') { key = cfg.certificate.keyPem; cert = cfg.certificate.certChainPem; }
    if (cfg.roots?.kind === 'sds' && w) ca = w.rootsPem;
    else if (cfg.roots?.kind === 'static') ca = [cfg.roots.caPem];
    if (w) version = w.serialNumber;
    return { key, cert, ca, version };
  }

  /** The SecureContext for these TLS settings with the current secrets. */
  secureContext(cfg: CommonTlsConfig): tls.SecureContext {
    const m = this.material(cfg);
    const cached = this.contexts.get(cfg.key);
    if (cached && cached.version === m.version) return cached.ctx;
    // A session id context lets a client resume a TLS session when client certificates are
    // requested; without one OpenSSL aborts the resumed handshake with an internal_error alert.
    const ctx = tls.createSecureContext({ key: m.key, cert: m.cert, ca: m.ca, sessionIdContext: 'trellis-proxy' });
    if (this.contexts.size > 256) this.contexts.clear();
    this.contexts.set(cfg.key, { version: m.version, ctx });
    return ctx;
  }
}

/** Facts about a verified peer certificate that XFCC, RBAC, metrics and logs use. */
export interface PeerCertificateInfo {
  uriSans: string[];
  dnsSans: string[];
  /** RFC 2253 order (most specific first), as Envoy prints it. */
  subject: string;
  /** Hex SHA-256 of the DER certificate. */
  certHash: string;
  certPem?: string;
}

export function peerCertificateInfo(raw: Buffer): PeerCertificateInfo {
  const x = new X509Certificate(raw);
  const uriSans: string[] = [];
  const dnsSans: string[] = [];
  for (const part of (x.subjectAltName ?? '').split(', ')) {
    if (part.startsWith('URI:')) uriSans.push(part.slice(4));
    else if (part.startsWith('DNS:')) dnsSans.push(part.slice(4));
  }
  const subject = x.subject ? x.subject.split('\n').filter(Boolean).reverse().join(',') : '';
  return { uriSans, dnsSans, subject, certHash: createHash('sha256').update(raw).digest('hex'), certPem: x.toString() };
}
