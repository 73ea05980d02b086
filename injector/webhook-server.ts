// The HTTPS endpoint the apiserver calls: POST /inject with an AdmissionReview, plus /ready.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { BadReviewError, parseReview, reviewPod } from './admission.js';
import type { TemplateValues } from './template.js';
import type { ParsedTemplate } from './templater.js';

const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface WebhookServerOptions {
  host: string;
  port: number;
  certPem: string;
  keyPem: string;
  /** The current template values (they change when the ConfigMap is edited). */
  values: () => TemplateValues;
  /** The current injection template (default: the built-in one). */
  template?: () => ParsedTemplate;
  /** Extra plain-HTTP routes on the ready server (e.g. /metrics). */
  extraRoutes?: Record<string, http.RequestListener>;
  isReady: () => boolean;
  log: (msg: string) => void;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) { reject(new BadReviewError(`request body exceeds ${MAX_BODY_BYTES} bytes`)); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, code: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(code, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Handles /ready (both servers) and /inject (the TLS one only). */
export function requestHandler(opts: Pick<WebhookServerOptions, 'values' | 'template' | 'isReady' | 'log' | 'extraRoutes'>, serveInject: boolean): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://injector');
    const extra = serveInject ? undefined : opts.extraRoutes?.[url.pathname];
    if (extra) { extra(req, res); return; }
    if (url.pathname === '/ready' || url.pathname === '/healthz') {
      if (url.pathname === '/healthz' || opts.isReady()) send(res, 200, 'ok\n');
      else send(res, 503, 'caBundle not yet set on the webhook configuration\n');
      return;
    }
    if (!serveInject || url.pathname !== '/inject') { send(res, 404, `no handler for ${url.pathname}\n`); return; }
    if (req.method !== 'POST') { res.setHeader('allow', 'POST'); send(res, 405, '/inject accepts POST only\n'); return; }
    const type = req.headers['content-type'] ?? '';
    if (!type.startsWith('application/json')) { send(res, 415, `content-type ${type || '(none)'} is not supported, want application/json\n`); return; }
    readBody(req).then((text) => {
      let body: unknown;
      try { body = JSON.parse(text); } catch { throw new BadReviewError('request body is not JSON'); }
      const outcome = reviewPod(parseReview(body), opts.values(), opts.template?.());
      opts.log(outcome.summary);
      send(res, 200, outcome.review);
    }).catch((e: unknown) => {
      if (e instanceof BadReviewError) { send(res, 400, `${e.message}\n`); return; }
      opts.log(`/inject: internal error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      if (!res.headersSent) send(res, 500, 'internal error\n');
    });
  };
}

export async function listen(server: http.Server | https.Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  return (server.address() as AddressInfo).port;
}

export function createWebhookServer(opts: WebhookServerOptions): https.Server {
  return https.createServer({ cert: opts.certPem, key: opts.keyPem, minVersion: 'TLSv1.2' }, requestHandler(opts, true));
}

export function createReadyServer(opts: Pick<WebhookServerOptions, 'values' | 'isReady' | 'log' | 'extraRoutes'>): http.Server {
  return http.createServer(requestHandler(opts, false));
}
