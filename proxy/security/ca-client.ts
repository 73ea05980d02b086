// Client of IstioCertificateService: TLS to the CA (verified with the mesh root), the
// workload's ServiceAccount token as `authorization: Bearer` metadata.
import * as grpc from '@grpc/grpc-js';
import { certificateServiceClient, type CertificateServiceClient } from '../../api/security/certificate-service.js';

export interface CAClientOptions {
  /** host:port of the CA (istiod.istio-system.svc:15012 in a cluster). */
  address: string;
  /** Roots that verify the CA's serving certificate. */
  rootCertPem: string;
  /** The name the CA's certificate is checked against (when `address` is an IP). */
  serverName?: string;
  /** Returns the current token (projected tokens are re-read, the kubelet rotates them). */
  token: () => string;
  timeoutMs?: number;
}

export class CAClient {
  private readonly client: CertificateServiceClient;

  constructor(private readonly opts: CAClientOptions) {
    const creds = grpc.credentials.createSsl(Buffer.from(opts.rootCertPem));
    const options: grpc.ClientOptions = {};
    if (opts.serverName) {
      options['grpc.ssl_target_name_override'] = opts.serverName;
      options['grpc.default_authority'] = opts.serverName;
    }
    this.client = certificateServiceClient(opts.address, creds, options);
  }

  /** Sends the CSR; resolves to [leaf, ...intermediates, root]. Errors carry the gRPC code. */
  createCertificate(csrPem: string, validitySeconds = 0): Promise<string[]> {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${this.opts.token()}`);
    const deadline = Date.now() + (this.opts.timeoutMs ?? 10_000);
    return new Promise((resolve, reject) => {
      this.client.CreateCertificate({ csr: csrPem, validity_duration: validitySeconds }, md, { deadline }, (err, res) => {
        if (err) return reject(err);
        const chain = res?.cert_chain ?? [];
        if (chain.length === 0) return reject(new Error(`CreateCertificate ${this.opts.address}: response.cert_chain is empty`));
        resolve(chain);
      });
    });
  }

  close(): void { this.client.close(); }
}
