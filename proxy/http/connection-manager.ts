// Envoy's HTTP connection manager for one filter chain: an HTTP/1.1 server fed with the
// connections the listener hands over, running each request through the stages
// route -> cluster -> host -> forward, then stats and the access log.
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type { HttpConnectionManagerConfig } from '../xds/resources/listener.js';
import type { ConnectionContext, ProxyRuntime } from '../runtime.js';
import { requestLabels, type LabelInput } from '../stats/labels.js';
import type { RequestLabels } from '../stats/istio-metrics.js';
import { firstValue, requestIdOf, upstreamRequestHeaders } from './headers.js';
import { REASON_HEADER, sendLocalReply } from './local-reply.js';
import { chooseCluster, httpsRedirectLocation, matchRequest, redirectLocation, requestHash, routeTableFor } from './route-stage.js';
import { routeToCluster } from './router.js';
import { effectiveFault, runFault } from './fault-stage.js';
import { applyToRequest, applyToResponse, mutationsFor } from './header-mutation.js';
import { rewritePath } from './path-rewrite.js';
import { proxyUpgrade } from './upgrade.js';
import { replaySocket } from './replay-socket.js';
import type { Duplex } from 'node:stream';
import { elapsedMs, newStreamInfo, type StreamInfo } from './stream-info.js';
import { corsPolicyFor, evaluateCors, sendPreflight } from './cors-stage.js';
import { mirror } from './mirror.js';
import { applyXfcc } from './xfcc.js';
import { requestAttributes, runRbac, sendRbacDenied } from './rbac-stage.js';

// The HTTP/2 connection preface; enough of it to tell h2c prior knowledge from HTTP/1.x.
const MAX_HEADER_BYTES = 60 * 1024;
const MAX_HEADERS_COUNT = 100;
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

export class HttpConnectionManager {
  private readonly server: http.Server;
  private readonly h2server: http2.Http2Server;
  private readonly contexts = new WeakMap<net.Socket, ConnectionContext>();
  private readonly sessions = new WeakMap<http2.Http2Session, ConnectionContext>();
  private pendingH2: ConnectionContext | undefined;
  /** Open HTTP/2 sessions, to send GOAWAY when this chain drains. */
  private readonly liveSessions = new Set<http2.Http2Session>();
  /** Set when a config push replaced this filter chain: connections finish and close. */
  private draining = false;
  /** HTTP/1 connections and their requests in flight, so a drain can close the idle ones. */
  private readonly h1Sockets = new Map<net.Socket, number>();
  /** The response in progress on each busy HTTP/1 connection, so a drain can make it the last. */
  private readonly h1Current = new Map<net.Socket, http.ServerResponse>();
  /** Upgraded (WebSocket) connections: no requests any more; closed only when the drain ends. */
  private readonly upgraded = new Set<net.Socket>();
  /** Stat names built once, not per request. */
  private readonly statNames: { total: string; noRoute: string; rxReset: string; byClass: string[] };
  /** Istio labels per (direction, cluster, host, status, flags): a proxy sees few such sets. */
  private readonly labelCache = new Map<string, RequestLabels>();

  constructor(private readonly hcm: HttpConnectionManagerConfig, private readonly rt: ProxyRuntime) {
    const prefix = `http.${hcm.statPrefix || 'hcm'}`;
    this.statNames = {
      total: `${prefix}.downstream_rq_total`, noRoute: `${prefix}.no_route`, rxReset: `${prefix}.downstream_rq_rx_reset`,
      byClass: [0, 1, 2, 3, 4, 5].map((c) => `${prefix}.downstream_rq_${c}xx`),
    };
    // Envoy's defaults: 60 KiB of request headers (node answers 431 past it), 100 headers.
    this.server = http.createServer({ keepAlive: true, maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
      this.serve(req, res);
    });
    this.server.keepAliveTimeout = 60_000;
    // Malformed requests (smuggling shapes: CL with TE, differing duplicate CLs, bad header
    // names or framing) never reach the router: llhttp rejects them and they get 400 here.
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
      this.rt.stats.inc(this.statNames.rxReset);
      if (!socket.writable) return socket.destroy();
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      socket.end(tooLarge
        ? 'HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'
        : 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      this.h1Current.delete(socket);
      if (this.h1Sockets.delete(socket)) {
        this.upgraded.add(socket);
        socket.once('close', () => this.upgraded.delete(socket));
      }
      proxyUpgrade(req, socket, head, this.hcm, this.contexts.get(socket), this.rt);
    });
    // h2c with prior knowledge (codec_type AUTO detects it by the connection preface).
    this.h2server = http2.createServer({}, (req, res) => {
      const r = req as unknown as http.IncomingMessage;
      if (r.headers.host === undefined && req.authority) r.headers.host = req.authority;
      this.serve(r, res as unknown as http.ServerResponse);
    });
    // The session is created synchronously inside emit('connection'): that is when it learns its context.
    this.h2server.on('session', (session) => {
      const ctx = this.pendingH2;
      if (!ctx) return;
      this.sessions.set(session, ctx);
      this.liveSessions.add(session);
      session.once('close', () => this.liveSessions.delete(session));
      this.rt.h2Sessions?.add(session, ctx.direction);
      if (this.draining) setImmediate(() => { if (!session.closed) session.close(); });
      // A session opened while its direction drains is told to go away at once.
      if (this.rt.draining.has(ctx.direction)) setImmediate(() => { if (!session.closed) session.close(); });
    });
    this.h2server.on('sessionError', (err) => this.rt.log(`http2 session error: ${err.message}`));
  }

  /**
   * The filter chain was replaced or removed by a config push (Envoy drains such chains):
   * requests in flight finish, HTTP/1.1 connections close after their current response (idle
   * ones now), HTTP/2 sessions get GOAWAY and close once their streams are done, so clients
   * come back on the new chain and its policy. Upgraded connections run until forceClose.
   */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.lastResponses();
    for (const [socket, inFlight] of this.h1Sockets) if (inFlight === 0) socket.end();
    for (const session of this.liveSessions) if (!session.closed) session.close();
  }

  /** The responses in progress are their connections' last (a listener drain starts with this). */
  lastResponses(): void {
    for (const [socket, inFlight] of this.h1Sockets) {
      if (inFlight === 0) continue;
      const res = this.h1Current.get(socket);
      // Not answered yet: the response says `connection: close`; already on its way: the
      // connection ends once it is written.
      if (res && !res.headersSent) res.shouldKeepAlive = false;
      else if (res) res.once('finish', () => socket.end());
    }
  }

  /** Connections still open on this chain (HTTP/1.1, upgraded, HTTP/2 sessions). */
  get openConnections(): number {
    return this.h1Sockets.size + this.upgraded.size + this.liveSessions.size;
  }

  /** The drain period is over: whatever is still open is closed (Envoy's drain time). */
  forceClose(): void {
    for (const socket of [...this.h1Sockets.keys(), ...this.upgraded]) socket.destroy();
    for (const session of this.liveSessions) session.destroy();
  }

  /** Takes over an accepted connection (the listener already chose this filter chain). */
  handle(socket: net.Socket, ctx: ConnectionContext): void {
    const codec = this.hcm.codecType ?? 'AUTO';
    if (codec === 'HTTP1') return this.handleHttp1(socket, ctx);
    if (codec === 'HTTP2') return this.handleHttp2(socket, ctx);
    // AUTO: peek at the first bytes; the preface decides, as Envoy's codec detection does.
    const onData = (chunk: Buffer): void => {
      socket.off('data', onData);
      socket.pause();
      const n = Math.min(chunk.length, H2_PREFACE.length);
      if (n > 0 && chunk.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
        this.handleHttp2(replaySocket(socket, chunk), ctx);
        return;
      }
      // The HTTP/1 server reads through the stream, so putting the bytes back is enough.
      socket.unshift(chunk);
      this.handleHttp1(socket, ctx);
      socket.resume();
    };
    socket.on('data', onData);
  }

  private handleHttp1(socket: net.Socket, ctx: ConnectionContext): void {
    this.contexts.set(socket, ctx);
    this.h1Sockets.set(socket, 0);
    socket.once('close', () => { this.h1Sockets.delete(socket); this.h1Current.delete(socket); });
    this.server.emit('connection', socket);
  }

  private handleHttp2(socket: Duplex, ctx: ConnectionContext): void {
    this.pendingH2 = ctx;
    try {
      this.h2server.emit('connection', socket);
    } finally {
      this.pendingH2 = undefined;
    }
  }

  /**
   * Runs one request. A failure no stage handled (the client reset while its body was being
   * read: 'aborted') ends this stream only; it must never reach the process as an unhandled
   * rejection, which would take every connection of the proxy down with it.
   */
  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.onRequest(req, res).catch((e: unknown) => {
      this.rt.stats.inc(this.statNames.rxReset);
      if (!res.headersSent && !res.destroyed && res.writable) {
        sendLocalReply(res, 400, 'DPE', `request failed: ${(e as Error).message}`);
        return;
      }
      res.destroy();
    });
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const h2 = (req as { stream?: { session?: http2.Http2Session } }).stream?.session;
    const ctx = h2 ? this.sessions.get(h2) : this.contexts.get(req.socket as net.Socket);
    const info = newStreamInfo(requestIdOf(req));
    const prefix = this.hcm.statPrefix || 'hcm';
    this.rt.stats.inc(this.statNames.total);
    // Draining (SIGTERM, /drain_listeners): keep-alive clients are told to go elsewhere.
    if (ctx && (this.draining || this.rt.draining.has(ctx.direction)) && req.httpVersionMajor === 1) res.shouldKeepAlive = false;
    const h1 = h2 ? undefined : req.socket as net.Socket;
    if (h1) {
      this.h1Sockets.set(h1, (this.h1Sockets.get(h1) ?? 0) + 1);
      this.h1Current.set(h1, res);
    }
    res.on('finish', () => this.finish(req, info, ctx));
    res.on('close', () => {
      if (!res.writableFinished) this.finish(req, info, ctx);
      if (h1 && this.h1Sockets.has(h1)) this.h1Sockets.set(h1, Math.max(0, (this.h1Sockets.get(h1) ?? 1) - 1));
      if (h1 && this.h1Current.get(h1) === res) this.h1Current.delete(h1);
    });
    if (!ctx) {
      info.responseFlags.push('NR');
      info.responseCode = 500;
      info.bytesSent += sendLocalReply(res, 500, 'NR', 'connection has no listener context');
      return;
    }
    // One snapshot per request: routes, clusters and endpoints all come from the same config.
    if (req.rawHeaders.length / 2 > MAX_HEADERS_COUNT) {
      info.responseCode = 431;
      res.shouldKeepAlive = false;
      info.bytesSent += sendLocalReply(res, 431, 'DPE', `too many request headers (limit ${MAX_HEADERS_COUNT})`);
      return;
    }
    // RBAC filters come before the router in the filter list: they decide before routing.
    if (this.hcm.rbac.length > 0) {
      const denied = runRbac(this.hcm.rbac, requestAttributes(req, ctx));
      if (denied) {
        this.rt.stats.inc(`http.${prefix}.rbac.denied`);
        info.responseFlags.push('RBAC');
        info.responseCode = 403;
        info.bytesSent += sendRbacDenied(req, res);
        return;
      }
      this.rt.stats.inc(`http.${prefix}.rbac.allowed`);
    }
    const snapshot = this.rt.config.current;
    const match = matchRequest(routeTableFor(this.hcm, snapshot), req);
    if (!match) {
      this.rt.stats.inc(this.statNames.noRoute);
      info.responseFlags.push('NR');
      info.responseCode = 404;
      info.bytesSent += sendLocalReply(res, 404, 'NR', `no route for host "${req.headers.host ?? ''}" path "${req.url ?? ''}"`);
      return;
    }
    const { route, virtualHost } = match;
    // require_tls: a plaintext request is redirected to https, the host without its port.
    if (virtualHost.requireTls !== 'NONE' && !ctx.downstreamTls) {
      info.responseCode = 301;
      res.writeHead(301, { location: httpsRedirectLocation(req), 'content-length': 0 });
      res.end();
      return;
    }
    info.routeName = match.route.name || match.virtualHost.name;
    const action = route.action;
    // The CORS filter runs before the router: preflights from allowed origins end here.
    const corsPolicy = corsPolicyFor(route, virtualHost);
    const cors = corsPolicy ? evaluateCors(corsPolicy, req) : undefined;
    if (cors?.kind === 'preflight') {
      info.responseCode = 200;
      sendPreflight(res, cors.headers);
      return;
    }
    const corsHeaders = cors?.kind === 'forward' ? cors.headers : undefined;
    if (action.kind === 'direct') {
      info.responseCode = action.status;
      const body = action.body ?? '';
      res.writeHead(action.status, { 'content-length': Buffer.byteLength(body), 'content-type': 'text/plain', ...corsHeaders });
      res.end(body);
      info.bytesSent += Buffer.byteLength(body);
      return;
    }
    if (action.kind === 'redirect') {
      info.responseCode = action.status;
      res.writeHead(action.status, { location: redirectLocation(action, req, route.prefix), 'content-length': 0 });
      res.end();
      return;
    }
    const fault = effectiveFault(this.hcm, virtualHost, route);
    if (fault) {
      const before = info.responseFlags.length;
      const abort = await runFault(fault, res, info.responseFlags);
      if (info.responseFlags.length > before && info.responseFlags.includes('DI')) this.rt.stats.inc(`http.${prefix}.fault.delays_injected`);
      if (res.destroyed) {
        info.responseFlags.push('DC');
        return;
      }
      if (abort) {
        this.rt.stats.inc(`http.${prefix}.fault.aborts_injected`);
        info.responseCode = abort.status;
        const body = 'fault filter abort';
        const headers: Record<string, string | number> = { 'content-type': 'text/plain', 'content-length': body.length, [REASON_HEADER]: `FI ${body}` };
        if (abort.grpcStatus !== undefined) Object.assign(headers, { 'content-type': 'application/grpc', 'grpc-status': abort.grpcStatus, 'grpc-message': body, 'content-length': 0 });
        res.writeHead(abort.status, headers);
        res.end(abort.grpcStatus !== undefined ? undefined : body);
        info.bytesSent += abort.grpcStatus !== undefined ? 0 : body.length;
        return;
      }
    }
    const clusterName = chooseCluster(action.target);
    if (!clusterName) {
      info.responseFlags.push('NC');
      info.responseCode = 503;
      info.bytesSent += sendLocalReply(res, 503, 'NC', 'no cluster selected');
      return;
    }
    info.cluster = clusterName;
    const path = rewritePath(req.url ?? '/', route.prefix, action.prefixRewrite, action.regexRewrite);
    const levels = mutationsFor([route.headers, virtualHost.headers, routeTableFor(this.hcm, snapshot)?.headers]);
    const baseHeaders = applyXfcc(upstreamRequestHeaders(req, info.requestId, action.hostRewrite, ctx.downstreamTls !== undefined), this.hcm.xfcc, ctx.downstreamTls);
    const upstreamPath = path.startsWith('/') ? path : `/${path}`;
    const headers = levels.length > 0 ? applyToRequest(baseHeaders, levels) : baseHeaders;
    const mutate = (h: Record<string, string | string[]>): Record<string, string | string[]> => (levels.length > 0 ? applyToResponse(h, levels) : h);
    await routeToCluster({
      req, res, info, ctx, snapshot, action, route, virtualHost, clusterName, headers, bufferLimitBytes: this.hcm.bufferLimitBytes,
      path: upstreamPath,
      responseHeaders: corsHeaders ? (h) => Object.assign(mutate(h), corsHeaders) : mutate,
      hash: requestHash(action.hashPolicies, req, ctx),
      onBody: action.mirrors.length === 0 ? undefined : (body) => mirror(this.rt, snapshot, action.mirrors, {
        method: req.method ?? 'GET', path: upstreamPath, headers, body, timeoutMs: action.timeoutMs, downstreamHttp2: req.httpVersionMajor === 2,
      }),
    }, this.rt);
  }

  private labelsFor(i: LabelInput): RequestLabels {
    const key = `${i.direction}\u0000${i.cluster ?? ''}\u0000${i.host ?? ''}\u0000${i.status}\u0000${i.flags}\u0000${i.mtls ? 1 : 0}\u0000${i.peerPrincipal ?? ''}\u0000${i.localPrincipal ?? ''}\u0000${i.upstreamPrincipal ?? ''}`;
    let labels = this.labelCache.get(key);
    if (labels && this.labelCacheIdentity === i.identity) return labels;
    if (this.labelCacheIdentity !== i.identity || this.labelCache.size >= 1000) {
      this.labelCache.clear();
      this.labelCacheIdentity = i.identity;
    }
    labels = requestLabels(i);
    this.labelCache.set(key, labels);
    return labels;
  }

  private labelCacheIdentity: ProxyRuntime['identity'] | undefined;

  private finish(req: http.IncomingMessage, info: StreamInfo, ctx: ConnectionContext | undefined): void {
    if (info.responseCode < 0) return;
    const durationMs = elapsedMs(info);
    const flags = info.responseFlags.join(',');
    const status = info.responseCode;
    info.responseCode = -1; // finish runs once per request
    const direction = ctx?.direction ?? 'outbound';
    const cls = Math.floor(status / 100);
    this.rt.stats.inc(this.statNames.byClass[cls] ?? `http.${this.hcm.statPrefix || 'hcm'}.downstream_rq_${cls}xx`);
    const tls = ctx?.downstreamTls;
    this.rt.metrics.recordRequest(this.labelsFor({
      direction, identity: this.rt.identity, cluster: info.cluster, host: req.headers.host, status, flags,
      mtls: tls?.mtls, peerPrincipal: tls?.uriSans?.[0], upstreamPrincipal: info.upstreamPrincipal,
      // Outbound source_principal: the certificate this proxy presents upstream.
      localPrincipal: direction === 'outbound' ? this.rt.secrets.ownUri() : tls?.localUri,
    }), durationMs);
    if (this.rt.logLevels?.enabled('http', 'debug')) {
      this.rt.logLevels.write('http', 'debug', `http: ${req.method ?? '-'} ${req.headers.host ?? ''}${req.url ?? ''} -> ${info.cluster ?? '-'} ${status} ${flags || '-'} ${durationMs.toFixed(1)} ms`);
    }
    this.rt.accessLog({
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
      downstreamPeerPrincipal: ctx?.downstreamTls?.uriSans?.[0],
      upstreamPeerPrincipal: info.upstreamPrincipal,
      requestedServerName: ctx?.downstreamTls?.sni,
      requestHeaders: req.headers,
      loggers: this.hcm.accessLogs.length ? this.hcm.accessLogs : undefined,
    });
  }
}
