// Pilot's debug and metrics HTTP endpoint (15014): readiness, per-proxy sync status with
// ACK/NACK details, what pilot last sent a proxy (config_dump), the last push, the current
// snapshot's inputs and warnings, Prometheus metrics.
import http from 'node:http';
import type { PushContext } from './model/push-context.js';
import type { PilotMetrics } from './metrics.js';
import type { ProxySyncStatus } from './xds/server.js';
import type { PushStatusJson } from './xds/push-status.js';

export interface DebugSources {
  /** Informers synced and the first snapshot built. */
  ready(): boolean;
  snapshot(): PushContext | undefined;
  syncz(): ProxySyncStatus[];
  /** Envoy ConfigDump of what was last sent to a proxy; undefined when not connected. */
  configDump?(proxyID: string): unknown;
  pushStatus?(): PushStatusJson | undefined;
  metrics: PilotMetrics;
  extra?(): Record<string, unknown>;
}

export interface DebugServerOptions { host?: string; port?: number }

export class DebugServer {
  private readonly server: http.Server;
  port?: number;

  constructor(private readonly src: DebugSources, private readonly opts: DebugServerOptions = {}) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`internal error: ${(e as Error).message}\n`);
      });
    });
  }

  start(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 15014, this.opts.host ?? '0.0.0.0', () => {
        const addr = this.server.address();
        this.port = typeof addr === 'object' && addr ? addr.port : this.opts.port;
        resolve(this.port ?? 0);
      });
    });
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://pilot');
    const path = url.pathname;
    const push = this.src.snapshot();
    switch (path) {
      case '/ready':
        if (this.src.ready()) text(res, 200, 'ready\n');
        else text(res, 503, push ? 'informers not synced\n' : 'no snapshot yet\n');
        return;
      case '/debug/syncz':
        json(res, this.src.syncz());
        return;
      case '/debug/config_dump': {
        const id = url.searchParams.get('proxyID');
        if (!id) { text(res, 400, 'config_dump: query parameter proxyID is required (node id, <pod>.<namespace> or <namespace>/<pod>)\n'); return; }
        const dump = this.src.configDump?.(id);
        if (dump === undefined) { text(res, 404, `config_dump: no connected proxy '${id}' (see /debug/syncz)\n`); return; }
        json(res, dump);
        return;
      }
      case '/debug/push_status':
        json(res, this.src.pushStatus?.() ?? {});
        return;
      case '/debug/configz':
        json(res, push ? { version: push.version, createdAt: push.createdAt.toISOString(), ...this.src.extra?.(), inputs: stripNoise(push.inputs) } : {});
        return;
      case '/debug/warnings':
        json(res, push ? { version: push.version, warnings: push.warnings } : { warnings: [] });
        return;
      case '/metrics': {
        const body = await this.src.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': this.src.metrics.registry.contentType });
        res.end(body);
        return;
      }
      default:
        text(res, 404, 'endpoints: /ready /debug/syncz /debug/config_dump?proxyID= /debug/push_status /debug/configz /debug/warnings /metrics\n');
    }
  }
}

function text(res: http.ServerResponse, code: number, body: string): void {
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}

function json(res: http.ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body, null, 2)}\n`);
}

// managedFields and the last-applied annotation double the size and say nothing here.
function stripNoise(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (k: string, v: unknown) => {
    if (k === 'managedFields' || k === 'kubectl.kubernetes.io/last-applied-configuration') return undefined;
    return v;
  }));
}
