// HTTP/1.1 Upgrade (WebSocket and friends): route the handshake like any request, then
// hand the raw bytes through both ways. Envoy's upgrade_configs default lets "websocket"
// through; the upstream's 101 (or refusal) reaches the client unchanged.
import net from 'node:net';
import type http from 'node:http';
import type { HttpConnectionManagerConfig } from '../xds/resources/listener.js';
import { originalDstTarget, type ConnectionContext, type ProxyRuntime } from '../runtime.js';
import { resolveCluster } from '../upstream/cluster-manager.js';
import { chooseCluster, matchRequest, routeTableFor } from './route-stage.js';
import { requestIdOf, upstreamRequestHeaders } from './headers.js';
import { REASON_HEADER } from './local-reply.js';
import { rewritePath } from './path-rewrite.js';
import { RBAC_DENIED_BODY, requestAttributes, runRbac } from './rbac-stage.js';

const STATUS_TEXT: Record<number, string> = { 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' };

function reject(socket: net.Socket, status: number, flag: string, text: string, body = `${text}\n`): void {
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ncontent-type: text/plain\r\n`
    + `content-length: ${Buffer.byteLength(body)}\r\n${REASON_HEADER}: ${flag} ${text}\r\nconnection: close\r\n\r\n${body}`);
}

export function proxyUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer, hcm: HttpConnectionManagerConfig,
  ctx: ConnectionContext | undefined, rt: ProxyRuntime): void {
  socket.on('error', () => socket.destroy());
  // Upgrades skip the request path: the RBAC filters must still decide first.
  if (ctx && hcm.rbac.length > 0) {
    const prefix = hcm.statPrefix || 'hcm';
    if (runRbac(hcm.rbac, requestAttributes(req, ctx))) {
      rt.stats.inc(`http.${prefix}.rbac.denied`);
      reject(socket, 403, 'RBAC', RBAC_DENIED_BODY, RBAC_DENIED_BODY);
      return;
    }
    rt.stats.inc(`http.${prefix}.rbac.allowed`);
  }
  const snapshot = rt.config.current;
  const match = matchRequest(routeTableFor(hcm, snapshot), req);
  if (!ctx || !match || match.route.action.kind !== 'route') {
    reject(socket, 404, 'NR', `no upgrade route for host "${req.headers.host ?? ''}" path "${req.url ?? ''}"`);
    return;
  }
  const action = match.route.action;
  const name = chooseCluster(action.target) ?? '';
  const lookup = resolveCluster(snapshot, name);
  if (!('cluster' in lookup)) return reject(socket, 503, 'missing' in lookup ? 'NC' : 'UH', `no healthy upstream in cluster ${name}`);
  const cluster = lookup.cluster;
  const ep = cluster.config.type === 'ORIGINAL_DST' ? originalDstTarget(ctx) : rt.clusters.pick(cluster);
  if (!ep) return reject(socket, 503, 'UH', `no healthy upstream in cluster ${name}`);
  if (rt.isOwnListener(ep)) return reject(socket, 503, 'UF', `refusing to connect to the proxy's own listener ${ep.address}:${ep.port}`);
  rt.stats.inc(`cluster.${name}.upstream_cx_total`);
  rt.stats.inc(`http.${hcm.statPrefix || 'hcm'}.downstream_cx_upgrades_total`);

  const path = rewritePath(req.url ?? '/', match.route.prefix, action.prefixRewrite, action.regexRewrite);
  const headers = upstreamRequestHeaders(req, requestIdOf(req), action.hostRewrite, ctx.downstreamTls !== undefined);
  // Upgrade and Connection are hop-by-hop, yet they are the point of this request.
  headers.push('connection', 'upgrade', 'upgrade', String(req.headers.upgrade ?? ''));
  let text = `${req.method ?? 'GET'} ${path.startsWith('/') ? path : `/${path}`} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
  text += '\r\n';

  const upstream = net.connect({ host: ep.address, port: ep.port, noDelay: true });
  const timer = setTimeout(() => upstream.destroy(new Error('connect timeout')), cluster.config.connectTimeoutMs);
  let connected = false;
  upstream.once('connect', () => {
    connected = true;
    clearTimeout(timer);
    upstream.write(text);
    if (head.length > 0) upstream.write(head);
    socket.pipe(upstream);
    upstream.pipe(socket);
  });
  upstream.on('error', (err) => {
    clearTimeout(timer);
    if (!connected) {
      rt.stats.inc(`cluster.${name}.upstream_cx_connect_fail`);
      reject(socket, 503, 'UF', `upstream connect error: ${err.message}`);
    } else socket.destroy();
  });
  socket.on('close', () => upstream.destroy());
  upstream.on('close', () => { if (connected) socket.destroy(); });
}
