// The three HTTP faces of the proxy: admin (loopback only), Prometheus scrape, readiness.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProxyRuntime } from '../runtime.js';
import type { XdsTransport } from '../xds/xds-transport.js';
import { resolveCluster } from '../upstream/cluster-manager.js';
import { PROXY_VERSION, nodeId } from '../xds/node.js';
import { configDump } from './config-dump.js';
import { appProbeHandler, probeTarget, type AppProbers } from '../health/app-probes.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

function send(res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function json(res: http.ServerResponse, value: unknown): void {
  send(res, 200, JSON.stringify(value, null, 2) + '\n', 'application/json');
}

async function serve(host: string, port: number, routes: Record<string, Handler>, fallback?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const handler = routes[path];
    if (!handler && fallback?.(req, res)) return;
    if (!handler) return send(res, 404, `unknown path ${path}\n`);
    Promise.resolve(handler(req, res)).catch((err: Error) => send(res, 500, `${err.message}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => resolve());
  });
  return server;
}

export interface AdminPorts {
  admin: number;
  prometheus: number;
  readiness: number;
}

/** What the admin API can ask of the process (Envoy's /drain_listeners, /quitquitquit, /listeners). */
export interface AdminLifecycle {
  drainListeners(inboundOnly: boolean): Promise<string[]>;
  listeners(): Array<{ name: string; address: string; state: string }>;
  quit(): void;
}

function postOnly(h: Handler): Handler {
  return (req, res) => (req.method === 'POST' ? h(req, res) : send(res, 405, 'method not allowed: use POST\n'));
}

export class AdminServers {
  private servers: http.Server[] = [];
  private readonly startedAt = Date.now();

  constructor(private readonly rt: ProxyRuntime, private readonly ads: () => XdsTransport | undefined, private readonly lifecycle?: AdminLifecycle,
    /** The app's rewritten probes, answered on the readiness port under /app-health/. */
    private readonly appProbes?: AppProbers,
    /** REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION: probe the app on 127.0.0.1, not the pod IP. */
    private readonly legacyLocalhostProbes = false) {}

  async start(ports: AdminPorts, adminHost = '127.0.0.1', publicHost = '0.0.0.0'): Promise<AdminPorts> {
    const ready: Handler = (_req, res) => (this.rt.ready() ? send(res, 200, 'LIVE\n') : send(res, 503, 'PRE_INITIALIZING\n'));
    const prometheus: Handler = async (_req, res) => send(res, 200, await this.rt.metrics.prometheusText(), this.rt.metrics.contentType);
    const admin = await serve(adminHost, ports.admin, {
      '/': (_req, res) => send(res, 200, 'config_dump clusters stats stats/prometheus ready server_info\n'),
      '/config_dump': (_req, res) => json(res, configDump(this.rt.config.current)),
      '/clusters': (_req, res) => send(res, 200, this.clustersText()),
      '/stats': (_req, res) => send(res, 200, this.statsText()),
      '/stats/prometheus': prometheus,
      '/ready': ready,
      '/server_info': (_req, res) => json(res, this.serverInfo()),
      '/healthz': (_req, res) => send(res, 200, 'OK\n'),
      '/logging': (req, res) => this.logging(req, res),
      '/listeners': (req, res) => {
        const ls = this.lifecycle?.listeners() ?? [];
        if ((req.url ?? '').includes('format=json')) return json(res, { listener_statuses: ls.map((l) => ({ name: l.name, local_address: l.address, state: l.state })) });
        return send(res, 200, ls.map((l) => `${l.name}::${l.address}${l.state === 'draining' ? '::draining' : ''}`).join('\n') + '\n');
      },
      '/drain_listeners': postOnly(async (req, res) => {
        const closed = await this.lifecycle?.drainListeners((req.url ?? '').includes('inboundonly')) ?? [];
        send(res, 200, `OK draining ${closed.join(',')}\n`);
      }),
      '/quitquitquit': postOnly((_req, res) => {
        // Answer first: the caller (a Job's main container) waits for the reply.
        res.once('finish', () => this.lifecycle?.quit());
        send(res, 200, 'OK\n');
      }),
    });
    this.servers.push(admin);
    const prom = await serve(publicHost, ports.prometheus, { '/stats/prometheus': prometheus });
    this.servers.push(prom);
    const readiness = await serve(publicHost, ports.readiness, { '/healthz/ready': ready }, this.appProbes && appProbeHandler(this.appProbes, probeTarget(this.rt.identity.instanceIp, this.legacyLocalhostProbes)));
    this.servers.push(readiness);
    const port = (s: http.Server): number => (s.address() as AddressInfo).port;
    return { admin: port(admin), prometheus: port(prom), readiness: port(readiness) };
  }

  /** Envoy's /logging: GET lists loggers; POST ?level=L sets all, ?<logger>=L one (or paths=a:L,b:L). */
  private logging(req: http.IncomingMessage, res: http.ServerResponse): void {
    const levels = this.rt.logLevels;
    if (!levels) return send(res, 404, 'logging is not configurable in this proxy\n');
    const params = new URL(req.url ?? '/', 'http://admin').searchParams;
    if ([...params.keys()].length > 0) {
      if (req.method !== 'POST') return send(res, 405, 'method not allowed: use POST to change levels\n');
      try {
        for (const [k, v] of params) {
          if (k === 'level') levels.setAll(v);
          else if (k === 'paths') for (const p of v.split(',')) { const [name, lvl] = p.split(':'); levels.set(name, lvl ?? ''); }
          else levels.set(k, v);
        }
      } catch (e) {
        return send(res, 400, `error: ${(e as Error).message}\n`);
      }
    }
    send(res, 200, levels.text());
  }

  private clustersText(): string {
    const s = this.rt.config.current;
    const lines: string[] = [];
    for (const name of s.clusters.keys()) {
      const r = resolveCluster(s, name);
      lines.push(`${name}::observability_name::${name}`);
      if ('warming' in r) lines.push(`${name}::warming::true`);
      if (!('cluster' in r)) continue;
      const od = this.rt.clusters.existingOutlierDetector(name);
      if (od) lines.push(`${name}::outlier::ejections_active::${od.ejectedCount()}`);
      if (this.rt.clusters.panicking.has(name)) lines.push(`${name}::panic_mode::true`);
      for (const e of r.cluster.endpoints) {
        const host = `${e.address}:${e.port}`;
        const c = this.rt.clusters.counters(name, host);
        lines.push(`${name}::${host}::rq_total::${c.rqTotal}`);
        lines.push(`${name}::${host}::rq_active::${c.rqActive}`);
        lines.push(`${name}::${host}::cx_connect_fail::${c.cxConnectFail}`);
        lines.push(`${name}::${host}::health_flags::${od?.isEjected(host) ? '/failed_outlier_check' : 'healthy'}`);
        lines.push(`${name}::${host}::weight::${e.weight}`);
      }
    }
    return lines.join('\n') + '\n';
  }

  private statsText(): string {
    const cfg = this.rt.config;
    const ads = this.ads();
    const extra: Record<string, number> = {
      'server.live': this.rt.ready() ? 1 : 0,
      'server.uptime': Math.floor((Date.now() - this.startedAt) / 1000),
      'listener_manager.lds.update_success': cfg.stats.lds.updateSuccess,
      'listener_manager.lds.update_rejected': cfg.stats.lds.updateRejected,
      'cluster_manager.cds.update_success': cfg.stats.cds.updateSuccess,
      'cluster_manager.cds.update_rejected': cfg.stats.cds.updateRejected,
      'http.rds.update_success': cfg.stats.rds.updateSuccess,
      'http.rds.update_rejected': cfg.stats.rds.updateRejected,
      'cluster_manager.eds.update_success': cfg.stats.eds.updateSuccess,
      'cluster_manager.eds.update_rejected': cfg.stats.eds.updateRejected,
      'cluster_manager.active_clusters': cfg.current.clusters.size,
      'listener_manager.total_listeners_active': cfg.current.listeners.size,
    };
    if (ads) {
      extra['control_plane.connected_state'] = ads.stats.connects > 0 ? 1 : 0;
      extra['control_plane.ack'] = ads.stats.acks;
      extra['control_plane.nack'] = ads.stats.nacks;
      extra['control_plane.stream_errors'] = ads.stats.streamErrors;
    }
    for (const name of cfg.current.clusters.keys()) {
      const od = this.rt.clusters.existingOutlierDetector(name);
      if (od) extra[`cluster.${name}.outlier_detection.ejections_active`] = od.ejectedCount();
      extra[`cluster.${name}.lb_healthy_panic_active`] = this.rt.clusters.panicking.has(name) ? 1 : 0;
    }
    return this.rt.stats.text(extra);
  }

  private serverInfo(): unknown {
    return {
      version: `trellis-proxy/${PROXY_VERSION}`,
      state: this.rt.ready() ? 'LIVE' : 'PRE_INITIALIZING',
      uptime_current_epoch: `${Math.floor((Date.now() - this.startedAt) / 1000)}s`,
      node: { id: nodeId(this.rt.identity), cluster: `${this.rt.identity.workloadName}.${this.rt.identity.namespace}` },
      command_line_options: { concurrency: 1, mode: 'Serve' },
    };
  }

  async close(): Promise<void> {
    const servers = this.servers;
    this.servers = [];
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => { s.closeAllConnections(); s.close(() => resolve()); })));
  }
}
