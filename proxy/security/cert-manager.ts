// The workload certificate manager (the part of Istio's agent that feeds Envoy's SDS):
// key + CSR for its SPIFFE identity, CreateCertificate with its token, the current
// cert/key/roots, and rotation at half-life. Rotation never touches established
// connections: only new handshakes pick up the new SecureContext.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { spiffeId, spiffeIdOf, splitPemBundle } from '../../api/security/spiffe.js';
import { CAClient } from './ca-client.js';
import { createCsr, generateWorkloadKey } from './csr.js';

export interface CertManagerOptions {
  /** host:port of the CA. */
  caAddress: string;
  /** Name checked on the CA's certificate; default: the host of caAddress, or istiod.istio-system.svc for an IP. */
  caServerName?: string;
  /**
   * The mounted `istio-ca-root-cert` ConfigMap (root-cert.pem); re-read at each rotation and
   * checked every rootWatchMs, so a root rotation published there reaches the proxy at once.
   */
  caRootCertFile?: string;
  /** How often caRootCertFile is checked for a new bundle (default 5000; 0 = only at rotations). */
  rootWatchMs?: number;
  caRootCertPem?: string;
  /** The projected ServiceAccount token (audience istio-ca); re-read at each request. */
  tokenFile?: string;
  token?: string;
  trustDomain?: string;
  namespace: string;
  serviceAccount: string;
  /** Requested certificate lifetime in seconds (0: the CA's default, 24 h). */
  ttlSeconds?: number;
  /** Fraction of the lifetime after which the certificate is renewed (Istio: 0.5). */
  graceRatio?: number;
}

/** The host part of host:port when it is a DNS name (what the CA's certificate names). */
function defaultServerName(address: string): string {
  const host = address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return net.isIP(host) ? 'istiod.istio-system.svc' : host;
}

export interface WorkloadCert {
  spiffeId: string;
  keyPem: string;
  /** Leaf then intermediates (what a TLS peer is sent). */
  certChainPem: string;
  /** Every trusted root (from the CA's answer and the mounted root file). */
  rootsPem: string[];
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

export interface CertManagerEvents {
  rotated: [cert: WorkloadCert];
  rotationFailed: [err: Error];
}

export class WorkloadCertManager extends EventEmitter<CertManagerEvents> {
  readonly spiffeId: string;
  private ca: CAClient;
  private caRoots: string;
  private cert?: WorkloadCert;
  private context?: tls.SecureContext;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private failures = 0;
  private nextKey?: Promise<string>;
  private rootWatch?: NodeJS.Timeout;
  private watchedRoots = '';
  private rotating?: Promise<WorkloadCert>;

  constructor(private readonly opts: CertManagerOptions) {
    super();
    this.spiffeId = spiffeId(opts.trustDomain ?? 'cluster.local', opts.namespace, opts.serviceAccount);
    this.caRoots = this.configuredRoots().join('');
    this.ca = this.caClient();
  }

  private caClient(): CAClient {
    return new CAClient({
      address: this.opts.caAddress,
      rootCertPem: this.caRoots,
      serverName: this.opts.caServerName ?? defaultServerName(this.opts.caAddress),
      token: () => this.token(),
    });
  }

  /** A changed root file (root rotation published through the ConfigMap) gets a new CA channel. */
  private refreshCAClient(roots: string[]): void {
    const pem = roots.join('');
    if (pem === this.caRoots) return;
    this.caRoots = pem;
    this.ca.close();
    this.ca = this.caClient();
  }

  private token(): string {
    if (this.opts.tokenFile) return fs.readFileSync(this.opts.tokenFile, 'utf8').trim();
    if (this.opts.token) return this.opts.token;
    throw new Error('cert manager: neither tokenFile nor token is set');
  }

  private configuredRoots(): string[] {
    const pem = this.opts.caRootCertFile ? fs.readFileSync(this.opts.caRootCertFile, 'utf8') : this.opts.caRootCertPem ?? '';
    const roots = splitPemBundle(pem);
    if (roots.length === 0) throw new Error(`cert manager: no root certificate in ${this.opts.caRootCertFile ?? 'caRootCertPem'}`);
    return roots;
  }

  /** Obtains the first certificate (rejects if that fails), then keeps it fresh. */
  async start(): Promise<WorkloadCert> {
    const cert = await this.fetch();
    this.install(cert);
    this.watchRoots();
    return cert;
  }

  /**
   * Istio's agent pushes a changed root bundle to Envoy without waiting for the next renewal;
   * here a changed root file triggers a renewal, which re-reads the roots (and the CA channel's
   * trust) and builds the new SecureContext. Without this a proxy holding a 24 h certificate
   * would trust a new root only hours after it was published. The kubelet swaps ConfigMap
   * files by symlink, so the content is polled rather than watched.
   */
  private watchRoots(): void {
    const file = this.opts.caRootCertFile;
    const every = this.opts.rootWatchMs ?? 5000;
    if (!file || every <= 0) return;
    this.watchedRoots = this.caRoots;
    this.rootWatch = setInterval(() => {
      let pem: string;
      try { pem = splitPemBundle(fs.readFileSync(file, 'utf8')).join(''); } catch { return; } // mid-swap: next time
      if (pem === '' || pem === this.watchedRoots || this.rotating) return;
      this.watchedRoots = pem;
      this.rotate().catch((e: Error) => {
        this.watchedRoots = ''; // try again at the next check
        this.emit('rotationFailed', e);
      });
    }, every);
    this.rootWatch.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.rootWatch) clearInterval(this.rootWatch);
    if (this.timer) clearTimeout(this.timer);
    this.ca.close();
  }

  /** The current certificate; throws before start() resolved. */
  current(): WorkloadCert {
    if (!this.cert) throw new Error(`cert manager ${this.spiffeId}: no certificate yet`);
    return this.cert;
  }

  /** A SecureContext with the latest key, chain and roots (a new object after each rotation). */
  secureContext(): tls.SecureContext {
    if (!this.context) throw new Error(`cert manager ${this.spiffeId}: no certificate yet`);
    return this.context;
  }

  /** key/cert/ca in node:tls option form, for tls.createServer or server.setSecureContext. */
  tlsMaterial(): { key: string; cert: string; ca: string[] } {
    const c = this.current();
    return { key: c.keyPem, cert: c.certChainPem, ca: c.rootsPem };
  }

  /** Renews now (also what the timer does at half-life). */
  async rotate(): Promise<WorkloadCert> {
    // One renewal at a time: the timer and the root watch may both ask.
    this.rotating ??= this.fetch().finally(() => { this.rotating = undefined; });
    const cert = await this.rotating;
    if (this.cert !== cert) {
      this.install(cert);
      this.emit('rotated', cert);
    }
    return cert;
  }

  private async fetch(): Promise<WorkloadCert> {
    // RSA key generation takes up to a second: the next key is made ahead of time.
    const keyPem = await (this.nextKey ?? generateWorkloadKey());
    this.nextKey = undefined;
    const configured = this.configuredRoots();
    this.refreshCAClient(configured);
    const csr = createCsr(keyPem, [this.spiffeId]);
    const chain = await this.ca.createCertificate(csr, this.opts.ttlSeconds ?? 0);
    const leaf = new X509Certificate(chain[0]);
    const got = spiffeIdOf(leaf);
    if (got !== this.spiffeId) throw new Error(`cert manager: CA issued a certificate for ${String(got)}, expected ${this.spiffeId}`);
    // The CA's answer ends with its root; the mounted bundle may add others (root rotation).
    const roots = new Map<string, string>();
    const caRoot = chain.length > 1 ? splitPemBundle(chain[chain.length - 1]) : [];
    for (const pem of [...caRoot, ...configured]) roots.set(new X509Certificate(pem).fingerprint256, pem);
    return {
      spiffeId: this.spiffeId,
      keyPem,
      certChainPem: chain.slice(0, Math.max(1, chain.length - 1)).join(''),
      rootsPem: [...roots.values()],
      serialNumber: leaf.serialNumber,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
    };
  }

  private install(cert: WorkloadCert): void {
    this.nextKey = generateWorkloadKey();
    this.nextKey.catch(() => { this.nextKey = undefined; });
    this.context = tls.createSecureContext({ key: cert.keyPem, cert: cert.certChainPem, ca: cert.rootsPem });
    this.cert = cert;
    this.failures = 0;
    // Half-life is measured from now, not from the (backdated) NotBefore.
    const remaining = cert.notAfter.getTime() - Date.now();
    this.schedule(Math.max(100, remaining * (this.opts.graceRatio ?? 0.5)));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.rotate().catch((e: Error) => {
        this.failures++;
        this.emit('rotationFailed', e);
        // Retry with back-off, but never wait past a quarter of what is left.
        const left = (this.cert?.notAfter.getTime() ?? Date.now()) - Date.now();
        this.schedule(Math.max(100, Math.min(200 * 2 ** Math.min(this.failures, 8), 30_000, left / 4)));
      });
    }, ms);
    this.timer.unref();
  }
}
