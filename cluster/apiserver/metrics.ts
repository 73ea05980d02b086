// The API server's own Prometheus metrics on /metrics, named and labelled as kube-apiserver's:
// apiserver_request_total{verb,group,version,resource,subresource,scope,component,code} and
// apiserver_request_duration_seconds (same labels without code; long-running WATCH excluded,
// as kube-apiserver reports those in apiserver_longrunning_requests). Each server has its own
// registry.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { requestInfo, type RequestInfo } from './requestinfo.js';

const LABELS = ['verb', 'dry_run', 'group', 'version', 'resource', 'subresource', 'scope', 'component'] as const;
// kube-apiserver's buckets for apiserver_request_duration_seconds.
const BUCKETS = [0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60];

/** The verb label kube-apiserver reports: the HTTP method, with LIST, WATCH and APPLY told apart. */
export function reportedVerb(method: string, info: RequestInfo, contentType: string | undefined): string {
  if (info.verb === 'list') return 'LIST';
  if (info.verb === 'watch') return 'WATCH';
  if (method === 'PATCH' && (contentType ?? '').startsWith('application/apply-patch')) return 'APPLY';
  return method.toUpperCase();
}

function scopeOf(info: RequestInfo): string {
  if (!info.resourceRequest) return '';
  if (info.name) return 'resource';
  return info.namespace ? 'namespace' : 'cluster';
}

export class ApiMetrics {
  readonly registry = new Registry();
  private readonly total = new Counter({
    name: 'apiserver_request_total', help: 'Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.',
    labelNames: [...LABELS, 'code'], registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'apiserver_request_duration_seconds', help: 'Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.',
    labelNames: [...LABELS], buckets: BUCKETS, registers: [this.registry],
  });

  private readonly longRunning = new Gauge({
    name: 'apiserver_longrunning_requests', help: 'Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component.',
    labelNames: ['verb', 'group', 'version', 'resource', 'subresource', 'scope', 'component'], registers: [this.registry],
  });

  /** Records the request when its response is done (or the client went away); watches are also counted while open. */
  observe(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'https://apiserver');
    const info = requestInfo(req.method ?? 'GET', url);
    const verb = reportedVerb(req.method ?? 'GET', info, req.headers['content-type']);
    const labels = {
      verb, dry_run: url.searchParams.get('dryRun') ?? '', group: info.group, version: info.version,
      resource: info.resource, subresource: info.subresource, scope: scopeOf(info), component: 'apiserver',
    };
    const { dry_run: _d, ...running } = labels;
    if (verb === 'WATCH') this.longRunning.inc(running);
    res.once('close', () => {
      if (verb === 'WATCH') this.longRunning.dec(running);
      this.total.inc({ ...labels, code: String(res.statusCode) });
      if (verb !== 'WATCH') this.duration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
