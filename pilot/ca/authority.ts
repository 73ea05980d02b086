// The mesh CA: a signing certificate and key (a self-signed root kept in Secret
// `istio-ca-secret`, or an operator-supplied intermediate from Secret `cacerts` in Istio's
// layout), the trust bundle (possibly several roots, for zero-downtime root rotation), and
// issuance of workload certificates for exactly one SPIFFE identity.
import { createPublicKey, X509Certificate } from 'node:crypto';
import { splitPemBundle } from '../../api/security/spiffe.js';
import { createRootCert, generateRsaKey, isIssuedBy, isSelfSigned, parseCsr, publicKeyFromPem, signLeafCert } from './pki.js';
import { SecretExistsError, type SecretData, type SecretStore } from './secret-store.js';
import type { ParsedCsr } from './pki.js';

export const SELF_SIGNED_SECRET = 'istio-ca-secret';
export const PLUGGED_SECRET = 'cacerts';
export const CA_CERT = 'ca-cert.pem';
export const CA_KEY = 'ca-key.pem';
export const CERT_CHAIN = 'cert-chain.pem';
export const ROOT_CERT = 'root-cert.pem';

export const DEFAULT_WORKLOAD_TTL_SECONDS = 24 * 3600;
export const MAX_WORKLOAD_TTL_SECONDS = 90 * 24 * 3600;
export const DEFAULT_BACKDATE_SECONDS = 5 * 60;
export const DEFAULT_ROOT_VALIDITY_DAYS = 3650;

export interface CAOptions {
  store: SecretStore;
  trustDomain?: string;
  workloadTtlSeconds?: number;
  maxWorkloadTtlSeconds?: number;
  backdateSeconds?: number;
  rootValidityDays?: number;
  /** More roots to trust (PEM bundle), e.g. the next root during a root rotation. */
  extraRootsPem?: string;
}

export class CsrError extends Error {}
export class IdentityMismatchError extends Error {}

export class CertificateAuthority {
  readonly trustDomain: string;
  private readonly workloadTtl: number;
  private readonly maxWorkloadTtl: number;
  private readonly backdate: number;

  private constructor(
    opts: CAOptions,
    readonly source: 'self-signed' | 'cacerts',
    private readonly signingCertPem: string,
    private readonly signingKeyPem: string,
    /** Certificates between the leaf and the root: the signing cert first unless it is the root. */
    readonly intermediatesPem: string[],
    /** The root the issued chains end at. */
    readonly rootPem: string,
    /** Every trusted root (the issuing root first). */
    readonly trustBundlePem: string[],
  ) {
    this.trustDomain = opts.trustDomain ?? 'cluster.local';
    this.workloadTtl = opts.workloadTtlSeconds ?? DEFAULT_WORKLOAD_TTL_SECONDS;
    this.maxWorkloadTtl = opts.maxWorkloadTtlSeconds ?? MAX_WORKLOAD_TTL_SECONDS;
    this.backdate = opts.backdateSeconds ?? DEFAULT_BACKDATE_SECONDS;
  }

  /** Loads `cacerts` if present, else `istio-ca-secret`, creating a new self-signed root on first start. */
  static async load(opts: CAOptions): Promise<CertificateAuthority> {
    const plugged = await opts.store.get(PLUGGED_SECRET);
    if (plugged) return CertificateAuthority.fromSecret(opts, 'cacerts', PLUGGED_SECRET, plugged);
    let own = await opts.store.get(SELF_SIGNED_SECRET);
    if (!own) {
      const key = await generateRsaKey();
      const cert = createRootCert({ organization: opts.trustDomain ?? 'cluster.local', validityDays: opts.rootValidityDays ?? DEFAULT_ROOT_VALIDITY_DAYS, keyPem: key.privateKeyPem });
      const data: SecretData = { [CA_CERT]: cert, [CA_KEY]: key.privateKeyPem, [CERT_CHAIN]: '', [ROOT_CERT]: cert };
      try {
        await opts.store.create(SELF_SIGNED_SECRET, data);
        own = data;
      } catch (e) {
        // Another pilot replica created it first: use theirs, so all replicas share one root.
        if (!(e instanceof SecretExistsError)) throw e;
        own = await opts.store.get(SELF_SIGNED_SECRET);
        if (!own) throw new Error(`secret ${SELF_SIGNED_SECRET}: reported as existing but cannot be read`);
      }
    }
    return CertificateAuthority.fromSecret(opts, 'self-signed', SELF_SIGNED_SECRET, own);
  }

  private static fromSecret(opts: CAOptions, source: 'self-signed' | 'cacerts', name: string, data: SecretData): CertificateAuthority {
    const certPem = splitPemBundle(data[CA_CERT] ?? '')[0];
    const keyPem = data[CA_KEY];
    if (!certPem) throw new Error(`secret ${name}: data[${CA_CERT}] holds no certificate`);
    if (!keyPem) throw new Error(`secret ${name}: data[${CA_KEY}] is missing`);
    const signing = new X509Certificate(certPem);
    if (!signing.ca) throw new Error(`secret ${name}: data[${CA_CERT}] is not a CA certificate (basicConstraints CA:false)`);
    const keySpki = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
    if (!keySpki.equals(signing.publicKey.export({ type: 'spki', format: 'der' }))) {
      throw new Error(`secret ${name}: data[${CA_KEY}] does not match the public key of data[${CA_CERT}]`);
    }
    const rootsPem = [...splitPemBundle(data[ROOT_CERT] ?? ''), ...splitPemBundle(opts.extraRootsPem ?? '')];
    if (isSelfSigned(signing) && !rootsPem.some((r) => new X509Certificate(r).fingerprint256 === signing.fingerprint256)) rootsPem.unshift(certPem);
    if (rootsPem.length === 0) throw new Error(`secret ${name}: data[${ROOT_CERT}] holds no certificate`);
    const roots = rootsPem.map((p) => new X509Certificate(p));

    // Walk from the signing certificate up to a trusted root through cert-chain.pem.
    const pool = splitPemBundle(data[CERT_CHAIN] ?? '').map((p) => ({ pem: p, x: new X509Certificate(p) }));
    const intermediates: string[] = [];
    let cur = { pem: certPem, x: signing };
    let root: string | undefined;
    for (let depth = 0; depth < 8 && !root; depth++) {
      const r = roots.findIndex((x) => x.fingerprint256 === cur.x.fingerprint256 || isIssuedBy(cur.x, x));
      if (r >= 0 && roots[r].fingerprint256 === cur.x.fingerprint256) { root = rootsPem[r]; break; }
      intermediates.push(cur.pem);
      if (r >= 0) { root = rootsPem[r]; break; }
      const next = pool.find((c) => c.x.fingerprint256 !== cur.x.fingerprint256 && isIssuedBy(cur.x, c.x));
      if (!next) break;
      cur = next;
    }
    if (!root) throw new Error(`secret ${name}: data[${CA_CERT}] does not chain (through data[${CERT_CHAIN}]) to a root in data[${ROOT_CERT}]`);
    const bundle = [root, ...rootsPem.filter((p) => p !== root)];
    return new CertificateAuthority(opts, source, certPem, keyPem, intermediates, root, bundle);
  }

  /** All trusted roots as one PEM bundle (what `istio-ca-root-cert` holds). */
  rootBundle(): string {
    return this.trustBundlePem.join('');
  }

  /** When the issuing root expires. */
  rootExpiry(): Date {
    return new Date(new X509Certificate(this.rootPem).validTo);
  }

  /** The earliest expiry along the issuing chain (an intermediate can expire before the root). */
  chainExpiry(): Date {
    const all = [...this.intermediatesPem, this.rootPem].map((p) => new Date(new X509Certificate(p).validTo).getTime());
    return new Date(Math.min(...all));
  }

  identityFor(namespace: string, serviceAccount: string): string {
    return `spiffe://${this.trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
  }

  /** Parses and verifies a CSR (throws CsrError). */
  parseCsr(csrPem: string): ParsedCsr {
    try { return parseCsr(csrPem); } catch (e) { throw new CsrError((e as Error).message); }
  }

  /**
   * Signs a CSR for `identity` only: every URI SAN the CSR asks for must be that identity
   * (IdentityMismatchError otherwise). Returns [leaf, ...intermediates, root].
   */
  signWorkloadCsr(csrPem: string, identity: string, ttlSeconds = 0): string[] {
    const csr = this.parseCsr(csrPem);
    const others = csr.uris.filter((u) => u !== identity);
    if (others.length > 0) throw new IdentityMismatchError(`csr requests URI SAN ${JSON.stringify(others[0])}, but the caller may only obtain ${JSON.stringify(identity)}`);
    const ttl = ttlSeconds > 0 ? Math.min(ttlSeconds, this.maxWorkloadTtl) : this.workloadTtl;
    const leaf = signLeafCert({ publicKey: csr.publicKey, issuerCertPem: this.signingCertPem, issuerKeyPem: this.signingKeyPem, uris: [identity], ttlSeconds: ttl, backdateSeconds: this.backdate });
    return [leaf, ...this.intermediatesPem, this.rootPem];
  }

  /** A serving certificate (for pilot's own TLS port); returns the chain without the root, and its key. */
  async issueServingCert(opts: { dnsNames: string[]; ips?: string[]; ttlSeconds?: number }): Promise<{ certChainPem: string; keyPem: string }> {
    const key = await generateRsaKey();
    const leaf = signLeafCert({
      publicKey: publicKeyFromPem(key.publicKeyPem), issuerCertPem: this.signingCertPem, issuerKeyPem: this.signingKeyPem,
      dnsNames: opts.dnsNames, ips: opts.ips, ttlSeconds: opts.ttlSeconds ?? 365 * 86_400, backdateSeconds: this.backdate,
    });
    return { certChainPem: [leaf, ...this.intermediatesPem].join(''), keyPem: key.privateKeyPem };
  }
}
