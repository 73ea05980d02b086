// Envoy's HTTP connection manager for one filter chain: an HTTP/1.1 server fed with the
// connections the listener hands over, running each request through the stages
// route -> cluster -> host -> forward, then stats and the access log.
import http from 'node:http';
import type net from 'node:net';
import type { HttpConnectionManagerConfig } from '../xds/resources/listener.js';
import type { ConnectionContext, ProxyRuntime } from '../runtime.js';
import { formatAccessLog } from '../stats/access-log.js';
import { requestLabels } from '../stats/labels.js';
import { firstValue, requestIdOf } from './headers.js';
import { sendLocalReply } from './local-reply.js';
import { chooseCluster, matchRequest, routeTableFor } from './route-stage.js';
import { chooseUpstream } from './upstream-stage.js';
import { forward } from './forward-stage.js';
import { elapsedMs, newStreamInfo, type StreamInfo } from './stream-info.js';

export class HttpConnectionManager {
  private readonly server: http.Server;
  private readonly contexts = new WeakMap<net.Socket, ConnectionContext>();

  constructor(private readonly hcm: HttpConnectionManagerConfig, private readonly rt: ProxyRuntime) {
    this.server = http.createServer({ keepAlive: true }, (req, res) => {
      void this.onRequest(req, res);
    });
    this.server.keepAliveTimeout = 60_000;
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
  }

  /** Takes over an accepted connection (the listener already chose this filter chain). */
  handle(socket: net.Socket, ctx: ConnectionContext): void {
    this.contexts.set(socket, ctx);
    this.server.emit('connection', socket);
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const ctx = this.contexts.get(req.socket as net.Socket);
    const info = newStreamInfo(requestIdOf(req));
    const prefix = this.hcm.statPrefix || 'hcm';
    this.rt.stats.inc(`http.${prefix}.downstream_rq_total`);
    res.on('finish', () => this.finish(req, info, ctx));
    res.on('close', () => { if (!res.writableFinished) this.finish(req, info, ctx); });
    if (!ctx) {
      info.responseFlags.push('NR');
      info.responseCode = 500;
      info.bytesSent += sendLocalReply(res, 500, 'NR', 'connection has no listener context');
      return;
    }
    // One snapshot per request: routes, clusters and endpoints all come from the same config.
    const snapshot = this.rt.config.current;
    const match = matchRequest(routeTableFor(this.hcm, snapshot), req);
    if (!match) {
      this.rt.stats.inc(`http.${prefix}.no_route`);
      info.responseFlags.push('NR');
      info.responseCode = 404;
      info.bytesSent += sendLocalReply(res, 404, 'NR', `no route for host "${req.headers.host ?? ''}" path "${req.url ?? ''}"`);
      return;
    }
    info.routeName = match.route.name || match.virtualHost.name;
    const action = match.route.action;
    if (action.kind === 'direct') {
      info.responseCode = action.status;
      const body = action.body ?? '';
      res.writeHead(action.status, { 'content-length': Buffer.byteLength(body), 'content-type': 'text/plain' });
      res.end(body);
      info.bytesSent += Buffer.byteLength(body);
      return;
    }
    const clusterName = chooseCluster(action.target);
    if (!clusterName) {
      info.responseFlags.push('NC');
      info.responseCode = 503;
      info.bytesSent += sendLocalReply(res, 503, 'NC', 'no cluster selected');
      return;
    }
    info.cluster = clusterName;
    const choice = chooseUpstream(snapshot, this.rt.clusters, clusterName, ctx);
    if (!choice.ok) {
      if (choice.flag === 'UH') this.rt.stats.inc(`cluster.${clusterName}.upstream_rq_no_healthy_upstream`);
      info.responseFlags.push(choice.flag);
      info.responseCode = choice.status;
      info.bytesSent += sendLocalReply(res, choice.status, choice.flag, choice.text);
      return;
    }
    if (this.rt.isOwnListener(choice.host)) {
      info.responseFlags.push('UF');
      info.responseCode = 503;
      info.bytesSent += sendLocalReply(res, 503, 'UF', `refusing to connect to the proxy's own listener ${choice.host.address}:${choice.host.port}`);
      return;
    }
    const hostKey = `${choice.host.address}:${choice.host.port}`;
    info.upstreamHost = hostKey;
    const counters = this.rt.clusters.counters(clusterName, hostKey);
    counters.rqTotal++;
    counters.rqActive++;
    const pool = this.rt.clusters.pool(choice.host.address, choice.host.port, choice.cluster.config.connectTimeoutMs);
    try {
      const url = req.url ?? '/';
      const prefix = match.route.prefix;
      const path = action.prefixRewrite !== undefined && prefix !== undefined ? action.prefixRewrite + url.slice(prefix.length) : url;
      await forward(req, res, info, {
        pool,
        path: path.startsWith('/') ? path : `/${path}`,
        hostRewrite: action.hostRewrite,
        timeoutMs: action.timeoutMs,
        onUpstreamResult: (status, connectFailed) => {
          if (connectFailed) {
            counters.cxConnectFail++;
            this.rt.stats.inc(`cluster.${clusterName}.upstream_cx_connect_fail`);
          }
          this.chargeUpstream(clusterName, status ?? 503);
        },
      });
    } finally {
      counters.rqActive--;
    }
  }

  private chargeUpstream(cluster: string, status: number): void {
    this.rt.metrics.recordUpstream(cluster, status);
    this.rt.stats.inc(`cluster.${cluster}.upstream_rq_total`);
    this.rt.stats.inc(`cluster.${cluster}.upstream_rq_${status}`);
    this.rt.stats.inc(`cluster.${cluster}.upstream_rq_${Math.floor(status / 100)}xx`);
  }

  private finish(req: http.IncomingMessage, info: StreamInfo, ctx: ConnectionContext | undefined): void {
    if (info.responseCode < 0) return;
    const durationMs = elapsedMs(info);
    const flags = info.responseFlags.join(',');
    const status = info.responseCode;
    info.responseCode = -1; // finish runs once per request
    const direction = ctx?.direction ?? 'outbound';
    this.rt.stats.inc(`http.${this.hcm.statPrefix || 'hcm'}.downstream_rq_${Math.floor(status / 100)}xx`);
    this.rt.metrics.recordRequest(
      requestLabels({ direction, identity: this.rt.identity, cluster: info.cluster, host: req.headers.host, status, flags }),
      durationMs,
    );
    this.rt.accessLog(formatAccessLog({
      startTime: info.startTime,
      method: req.method ?? '-',
      path: req.url ?? '-',
      protocol: `HTTP/${req.httpVersion}`,
      responseCode: status,
      responseFlags: flags,
      bytesReceived: info.bytesReceived,
      bytesSent: info.bytesSent,
      durationMs,
      forwardedFor: firstValue(req.headers['x-forwarded-for']),
      userAgent: firstValue(req.headers['user-agent']),
      requestId: info.requestId,
      authority: req.headers.host,
      upstreamHost: info.upstreamHost,
      upstreamCluster: info.cluster,
      downstreamLocal: ctx ? `${ctx.originalDst.address}:${ctx.originalDst.port}` : undefined,
      downstreamRemote: ctx?.downstreamRemote,
      routeName: info.routeName,
    }));
  }
}
