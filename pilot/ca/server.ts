// IstioCertificateService over TLS (port 15012 in production): authenticates each caller by
// its ServiceAccount token (TokenReview) and signs its CSR for exactly its own SPIFFE identity.
import * as grpc from '@grpc/grpc-js';
import { certificateServiceDefinition, type IstioCertificateRequest, type IstioCertificateResponse } from '../../api/security/certificate-service.js';
import { CertificateAuthority, CsrError, IdentityMismatchError } from './authority.js';
import { CAMetrics } from './metrics.js';
import type { TokenReviewer } from './token-reviewer.js';

export const ROOT_EXPIRY_WARNING_DAYS = 30;

export interface CAServerOptions {
  ca: CertificateAuthority;
  reviewer: TokenReviewer;
  /** pilot's namespace: the serving certificate is for istiod.<namespace>.svc. */
  namespace: string;
  host?: string;
  /** 15012 in production; 0 picks a free port. */
  port?: number;
  /** More names for the serving certificate (e.g. the Service's cluster-local FQDN is added already). */
  extraDnsNames?: string[];
  extraIps?: string[];
  metrics?: CAMetrics;
  /** Adds more services to the TLS server before it binds (pilot's authenticated ADS). */
  alsoServe?: (server: grpc.Server) => void;
  log?: (msg: string) => void;
  warn?: (msg: string) => void;
}

export class CAServer {
  readonly metrics: CAMetrics;
  private server?: grpc.Server;
  private expiryTimer?: NodeJS.Timeout;
  private readonly log: (msg: string) => void;
  private readonly warn: (msg: string) => void;

  constructor(private readonly opts: CAServerOptions) {
    this.metrics = opts.metrics ?? new CAMetrics();
    this.log = opts.log ?? ((m) => console.log(`pilot/ca: ${m}`));
    this.warn = opts.warn ?? ((m) => console.warn(`pilot/ca: WARNING: ${m}`));
  }

  /** The DNS names of the serving certificate. */
  servingDnsNames(): string[] {
    const ns = this.opts.namespace;
    return [`istiod.${ns}.svc`, `istiod.${ns}.svc.cluster.local`, `istiod.${ns}`, 'istiod', ...(this.opts.extraDnsNames ?? [])];
  }

  async start(): Promise<{ port: number }> {
    const { ca } = this.opts;
    const serving = await ca.issueServingCert({ dnsNames: this.servingDnsNames(), ips: this.opts.extraIps });
    const creds = grpc.ServerCredentials.createSsl(
      Buffer.from(ca.rootBundle()),
      [{ cert_chain: Buffer.from(serving.certChainPem), private_key: Buffer.from(serving.keyPem) }],
      false, // callers authenticate with their token, not a client certificate
    );
    // Keepalive as on the plaintext xDS port: ADS streams may share this server.
    const server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_permit_without_calls': 1 });
    server.addService(certificateServiceDefinition(), { CreateCertificate: this.createCertificate });
    this.opts.alsoServe?.(server);
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${this.opts.host ?? '0.0.0.0'}:${this.opts.port ?? 15012}`, creds, (err, p) => (err ? reject(err) : resolve(p)));
    });
    this.server = server;
    this.checkRootExpiry();
    // Re-checked daily so a long-running pilot keeps warning as the root ages.
    this.expiryTimer = setInterval(() => this.checkRootExpiry(), 24 * 3600_000);
    this.expiryTimer.unref();
    this.log(`certificate service on :${port} (TLS, ${ca.source} CA, trust domain ${ca.trustDomain}, ${ca.trustBundlePem.length} root(s))`);
    return { port };
  }

  async stop(): Promise<void> {
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { server.forceShutdown(); resolve(); }, 2000);
      server.tryShutdown(() => { clearTimeout(t); resolve(); });
    });
  }

  /** Sets the expiry gauge and warns in the log when the root or an intermediate expires within 30 days. */
  checkRootExpiry(now = Date.now()): void {
    const { ca } = this.opts;
    const root = ca.rootExpiry();
    this.metrics.rootExpiry.set(Math.floor(root.getTime() / 1000));
    const earliest = ca.chainExpiry();
    const days = (earliest.getTime() - now) / 86_400_000;
    if (days < ROOT_EXPIRY_WARNING_DAYS) {
      this.warn(`CA certificate chain expires at ${earliest.toISOString()} (in ${days.toFixed(1)} days): rotate the root (add the new root to root-cert.pem of Secret cacerts first)`);
    }
  }

  private readonly createCertificate = (
    call: grpc.ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
    cb: grpc.sendUnaryData<IstioCertificateResponse>,
  ): void => {
    this.metrics.csrCount.inc();
    void this.handle(call).then((res) => cb(null, res), (e: grpc.ServiceError) => cb(e));
  };

  private async handle(call: grpc.ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>): Promise<IstioCertificateResponse> {
    const { ca, reviewer } = this.opts;
    const header = call.metadata.get('authorization')[0];
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
    if (!m) {
      this.metrics.authnFailures.inc();
      throw status(grpc.status.UNAUTHENTICATED, 'CreateCertificate: no "authorization: Bearer <token>" metadata');
    }
    let caller;
    try {
      caller = await reviewer.review(m[1]);
    } catch (e) {
      this.metrics.authnFailures.inc();
      throw status(grpc.status.UNAUTHENTICATED, `CreateCertificate: caller not authenticated: ${(e as Error).message}`);
    }
    const identity = ca.identityFor(caller.namespace, caller.serviceAccount);
    try {
      const chain = ca.signWorkloadCsr(call.request.csr, identity, Number(call.request.validity_duration) || 0);
      this.metrics.issued.inc();
      return { cert_chain: chain };
    } catch (e) {
      if (e instanceof IdentityMismatchError) {
        this.metrics.signErrors.inc({ reason: 'identity_mismatch' });
        throw status(grpc.status.PERMISSION_DENIED, `CreateCertificate: ${caller.username}: ${e.message}`);
      }
      if (e instanceof CsrError) {
        this.metrics.signErrors.inc({ reason: 'invalid_csr' });
        throw status(grpc.status.INVALID_ARGUMENT, `CreateCertificate: request.csr: ${e.message}`);
      }
      this.metrics.signErrors.inc({ reason: 'sign_failure' });
      throw status(grpc.status.INTERNAL, `CreateCertificate: signing failed: ${(e as Error).message}`);
    }
  }
}

function status(code: grpc.status, details: string): Partial<grpc.ServiceError> & Error {
  return Object.assign(new Error(details), { code, details });
}
