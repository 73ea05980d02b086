// The proxy's own SDS: resolves the secret names Istio's agent serves (`default`: the
// workload certificate chain and key; `ROOTCA`: the trust bundle) from the cert manager,
// other names (a gateway's `kubernetes://<credentialName>`) from the secrets received over
// ADS, and inline/file material from the TLS context itself. A SecureContext is built once per
// (TLS settings, certificate serial) and rebuilt after a rotation, so new handshakes use the
// new certificate while established connections keep theirs.
import tls from 'node:tls';
import { createHash, X509Certificate } from 'node:crypto';
import type { WorkloadCert } from './cert-manager.js';
import { isLocalSdsName, type CommonTlsConfig } from '../xds/resources/tls-context.js';
import type { TlsSecret } from '../xds/resources/secret.js';
import type { Versioned } from '../xds/snapshot.js';

/** Secrets received over ADS (SDS), by name. */
export type RemoteSecrets = () => ReadonlyMap<string, Versioned<TlsSecret>>;

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

  constructor(private readonly source?: CertificateSource, private readonly remote?: RemoteSecrets) {}

  /** A secret fetched over ADS; the version changes whenever its content does. */
  private remoteSecret(name: string, want: TlsSecret['kind']): { secret: TlsSecret; version: string } {
    const v = this.remote?.().get(name);
    if (!v) throw new SecretUnavailableError(`SDS secret "${name}" has not been received yet`);
    if (v.value.kind !== want) throw new SecretUnavailableError(`SDS secret "${name}" holds ${v.value.kind === 'roots' ? 'trusted roots' : 'a certificate'}, not ${want === 'roots' ? 'trusted roots' : 'a certificate'}`);
    return { secret: v.value, version: `${name}@${v.version}@${v.lastUpdated.getTime()}` };
  }

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
    const versions: string[] = [];
    const local = (cfg.certificate?.kind === 'sds' && isLocalSdsName(cfg.certificate.name)) || (cfg.roots?.kind === 'sds' && isLocalSdsName(cfg.roots.name));
    const w = local ? this.workloadCert() : undefined;
    if (local && !w) throw new SecretUnavailableError('SDS secret "default"/"ROOTCA": no workload certificate yet');
    if (w) versions.push(w.serialNumber);
    const c = cfg.certificate;
    if (c?.kind === 'sds' && isLocalSdsName(c.name) && w) { key = w.keyPem; cert = w.certChainPem; }
    else if (c?.kind === 'sds') {
      const r = this.remoteSecret(c.name, 'certificate');
      if (r.secret.kind === 'certificate') { key = r.secret.keyPem; cert = r.secret.certChainPem; }
      versions.push(r.version);
    } else if (c?.kind === 'static') { key = c.keyPem; cert = c.certChainPem; }
    const roots = cfg.roots;
    if (roots?.kind === 'sds' && isLocalSdsName(roots.name) && w) ca = w.rootsPem;
    else if (roots?.kind === 'sds') {
      const r = this.remoteSecret(roots.name, 'roots');
      if (r.secret.kind === 'roots') ca = [r.secret.caPem];
      versions.push(r.version);
    } else if (roots?.kind === 'static') ca = [roots.caPem];
    return { key, cert, ca, version: versions.join('|') };
  }

  /** The SecureContext for these TLS settings with the current secrets. */
  secureContext(cfg: CommonTlsConfig): tls.SecureContext {
    const m = this.material(cfg);
    const cached = this.contexts.get(cfg.key);
    if (cached && cached.version === m.version) return cached.ctx;
    // A session id context lets a client resume a TLS session when client certificates are
    // requested; without one OpenSSL aborts the resumed handshake with an internal_error alert.
    const { minVersion, maxVersion, ciphers } = cfg.params ?? {};
    const ctx = tls.createSecureContext({ key: m.key, cert: m.cert, ca: m.ca, sessionIdContext: 'trellis-proxy', minVersion, maxVersion, ciphers });
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
