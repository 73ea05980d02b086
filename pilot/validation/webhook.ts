// The validating admission webhook (`/validate` on 15017, HTTPS): AdmissionReview
// admission.k8s.io/v1 in, the same review with `response.allowed` out. Denials carry a
// Kubernetes-style message naming the object and every bad field path.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { generateServingCertificate, serviceDnsNames, type ServingCertificate } from '../../api/tls/serving-cert.js';
import { validateIstioObject } from './validate.js';

export interface ValidationWebhookOptions {
  host?: string;
  port?: number;
  /** DNS names of the serving certificate (default: istiod.trellis-system.svc and its forms). */
  dnsNames?: string[];
  certificate?: ServingCertificate;
}

const VALIDATED_GROUPS = ['networking.istio.io', 'security.istio.io'];

interface AdmissionRequest { uid?: string; kind?: { group?: string; kind?: string }; operation?: string; namespace?: string; name?: string; object?: { metadata?: { name?: string; namespace?: string }; spec?: unknown } }

/** The AdmissionReview response for one request (pure, for tests and the server). */
export function review(req: AdmissionRequest): { uid: string; allowed: boolean; status?: { code: number; reason: string; message: string } } {
  const uid = req.uid ?? '';
  const kind = req.kind?.kind ?? '';
  if (req.operation === 'DELETE' || !VALIDATED_GROUPS.includes(req.kind?.group ?? '')) return { uid, allowed: true };
  const errors = validateIstioObject(kind, req.object?.spec);
  if (!errors || errors.length === 0) return { uid, allowed: true };
  const ns = req.object?.metadata?.namespace ?? req.namespace ?? 'default';
  const name = req.object?.metadata?.name ?? req.name ?? '';
  const message = `${kind} ${ns}/${name} is invalid: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`;
  return { uid, allowed: false, status: { code: 422, reason: 'Invalid', message } };
}

export class ValidationWebhook {
  readonly certificate: ServingCertificate;
  private readonly server: https.Server;
  port?: number;

  constructor(private readonly opts: ValidationWebhookOptions = {}) {
    const names = opts.dnsNames ?? serviceDnsNames('istiod', 'trellis-system');
    this.certificate = opts.certificate ?? generateServingCertificate({ dnsNames: names, ipAddresses: ['127.0.0.1'], caName: 'trellis-pilot-webhook-ca' });
    this.server = https.createServer({ cert: this.certificate.certPem, key: this.certificate.keyPem }, (req, res) => this.handle(req, res));
  }

  start(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (e) => reject(new Error(`validation webhook: listen :${this.opts.port ?? 15017}: ${e.message}`)));
      this.server.listen(this.opts.port ?? 15017, this.opts.host ?? '0.0.0.0', () => {
        const a = this.server.address();
        this.port = typeof a === 'object' && a ? a.port : undefined;
        resolve(this.port ?? 0);
      });
    });
  }

  stop(): Promise<void> {
    return new Promise((resolve) => { this.server.closeAllConnections(); this.server.close(() => resolve()); });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://x');
    if (url.pathname === '/ready') { res.end('ok'); return; }
    if (url.pathname !== '/validate' || req.method !== 'POST') { res.statusCode = 404; res.end(); return; }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: { apiVersion?: string; request?: AdmissionRequest };
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body; } catch (e) {
        res.statusCode = 400; res.end(`AdmissionReview: invalid JSON: ${(e as Error).message}`); return;
      }
      if (!body.request) { res.statusCode = 400; res.end('AdmissionReview: request is required'); return; }
      const response = review(body.request);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
    });
  }
}
