// Envoy's TcpProxy filter: pick a host of the chain's cluster (or the original destination
// for passthrough clusters) and pipe bytes both ways, passing half-closes through.
import net from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import type { TcpProxyConfig } from '../xds/resources/listener.js';
import { originalDstTarget, type ConnectionContext, type ProxyRuntime } from '../runtime.js';
import { resolveCluster } from '../upstream/cluster-manager.js';
import { pickWeighted } from '../upstream/load-balancer.js';
import type { SocketAddress } from '../interception/original-dst.js';
import { tcpLabels, type TcpPrincipals } from '../stats/labels.js';
import { transportFor } from '../xds/resources/upstream-transport.js';
import type { UpstreamTlsConfig } from '../xds/resources/tls-context.js';
import { connectTls } from '../upstream/tls-connector.js';

interface Target { cluster: string; host?: SocketAddress; timeoutMs: number; flag?: string; tls?: UpstreamTlsConfig }

function chooseTarget(cfg: TcpProxyConfig, ctx: ConnectionContext, rt: ProxyRuntime): Target {
  const name = cfg.cluster ?? (cfg.weightedClusters ? pickWeighted(cfg.weightedClusters, cfg.weightedClusters.reduce((s, c) => s + c.weight, 0))?.name : undefined) ?? '';
  const r = resolveCluster(rt.config.current, name);
  if (!('cluster' in r)) return { cluster: name, timeoutMs: 0, flag: 'missing' in r ? 'NC' : 'UH' };
  const c = r.cluster;
  if (c.config.type === 'ORIGINAL_DST') return { cluster: name, host: originalDstTarget(ctx), timeoutMs: c.config.connectTimeoutMs };
  const ep = rt.clusters.pick(c);
  // The endpoint's transport socket (automatic mTLS between sidecars), as for HTTP clusters.
  return ep
    ? { cluster: name, host: { address: ep.address, port: ep.port }, timeoutMs: c.config.connectTimeoutMs, tls: transportFor(c.config.transport, ep.transportMatch) }
    : { cluster: name, timeoutMs: 0, flag: 'UH' };
}

export function proxyTcp(downstream: net.Socket, cfg: TcpProxyConfig, ctx: ConnectionContext, rt: ProxyRuntime): void {
  const target = chooseTarget(cfg, ctx, rt);
  const prefix = cfg.statPrefix || target.cluster;
  rt.stats.inc(`tcp.${prefix}.downstream_cx_total`);
  const hostText = target.host ? `${target.host.address}:${target.host.port}` : '';
  if (!target.host || target.flag) {
    rt.log(`tcp ${ctx.listener.name}: no upstream for cluster ${target.cluster} (${target.flag ?? 'UH'}), closing`);
    rt.stats.inc(`tcp.${prefix}.downstream_cx_no_route`);
    downstream.destroy();
    return;
  }
  // Without interception a passthrough to our own address would loop forever.
  if (rt.isOwnListener(target.host)) {
    rt.log(`tcp ${ctx.listener.name}: original destination ${hostText} is this proxy's own listener, closing`);
    downstream.destroy();
    return;
  }
  const host = target.host;
  const startTime = new Date();
  const timeoutMs = target.timeoutMs || 10_000;
  const tlsCfg = target.tls;
  if (!tlsCfg) {
    pipeTcp(downstream, net.connect({ host: host.address, port: host.port, allowHalfOpen: true }), timeoutMs, target.cluster, hostText, ctx, rt, startTime);
    return;
  }
  // Hold the downstream's bytes (and its FIN) until the tunnel is up; a failed handshake closes it (UF).
  // A PassThrough rather than pause(): the listener resumes the socket after its filters ran.
  const held = new PassThrough();
  downstream.pipe(held);
  const earlyError = (): void => { downstream.destroy(); };
  downstream.on('error', earlyError);
  connectTls(host.address, host.port, tlsCfg, rt.secrets, timeoutMs).then((up) => {
    downstream.off('error', earlyError);
    if (downstream.destroyed) { up.socket.destroy(); return; }
    up.socket.allowHalfOpen = true;
    pipeTcp(downstream, up.socket, timeoutMs, target.cluster, hostText, ctx, rt, startTime, up.peerUri, held);
  }, (err: Error) => {
    rt.log(`tcp ${ctx.listener.name} -> ${target.cluster} ${hostText}: ${err.message}`);
    rt.stats.inc(`cluster.${target.cluster}.upstream_cx_connect_fail`);
    const labels = tcpLabels(ctx.direction, rt.identity, target.cluster, host.address, 'UF', tcpPrincipals(ctx, rt));
    rt.metrics.tcpOpen(labels);
    rt.metrics.tcpClose(labels, 0, 0);
    logTcp(rt, ctx, startTime, target.cluster, hostText, 'UF', 0, 0);
    downstream.destroy();
  });
}

/** Inbound: the verified downstream peer and this proxy (mTLS); outbound: this proxy and the verified upstream. */
function tcpPrincipals(ctx: ConnectionContext, rt: ProxyRuntime, upstreamPrincipal?: string): TcpPrincipals {
  const tls = ctx.downstreamTls;
  if (ctx.direction === 'inbound') return { mtls: tls?.mtls, peerPrincipal: tls?.uriSans?.[0], localPrincipal: tls?.localUri };
  return { localPrincipal: rt.secrets.ownUri(), upstreamPrincipal };
}

function logTcp(rt: ProxyRuntime, ctx: ConnectionContext, startTime: Date, cluster: string, hostText: string, flags: string, received: number, sent: number, upstreamPrincipal?: string): void {
  rt.accessLog({
    startTime, method: '-', path: '-', protocol: '-', responseCode: 0, responseFlags: flags, bytesReceived: received, bytesSent: sent,
    durationMs: Date.now() - startTime.getTime(), upstreamHost: hostText, upstreamCluster: cluster,
    downstreamLocal: `${ctx.originalDst.address}:${ctx.originalDst.port}`, downstreamRemote: ctx.downstreamRemote,
    downstreamPeerPrincipal: ctx.downstreamTls?.uriSans?.[0], upstreamPeerPrincipal: upstreamPrincipal,
  });
}

/** Pipes bytes both ways once the upstream socket exists (plain TCP or an established TLS tunnel). */
function pipeTcp(downstream: net.Socket, upstream: net.Socket, timeoutMs: number, cluster: string, hostText: string, ctx: ConnectionContext, rt: ProxyRuntime, startTime: Date, upstreamPrincipal?: string, source: Readable = downstream): void {
  const target = { cluster };
  const labels = tcpLabels(ctx.direction, rt.identity, cluster, hostText.slice(0, hostText.lastIndexOf(':')), '', tcpPrincipals(ctx, rt, upstreamPrincipal));
  rt.metrics.tcpOpen(labels);
  let sent = 0;
  let received = 0;
  let closed = false;
  const connectTimer = setTimeout(() => upstream.destroy(new Error('connect timeout')), timeoutMs);
  if (upstream.connecting) upstream.once('connect', () => clearTimeout(connectTimer));
  else clearTimeout(connectTimer);
  source.on('data', (c: Buffer) => { received += c.length; });
  upstream.on('data', (c: Buffer) => { sent += c.length; });
  // pipe() ends the destination when the source ends: a half-close crosses the proxy as a FIN.
  source.pipe(upstream);
  upstream.pipe(downstream);
  let openSockets = 2;
  const record = (): void => {
    if (closed) return;
    closed = true;
    clearTimeout(connectTimer);
    rt.metrics.tcpClose(labels, sent, received);
    logTcp(rt, ctx, startTime, cluster, hostText, '', received, sent, upstreamPrincipal);
  };
  const fail = (err: Error): void => {
    if (!closed) rt.log(`tcp ${ctx.listener.name} -> ${target.cluster} ${hostText}: ${err.message}`);
    if (upstream.connecting) rt.stats.inc(`cluster.${target.cluster}.upstream_cx_connect_fail`);
    downstream.destroy();
    upstream.destroy();
  };
  upstream.on('error', fail);
  downstream.on('error', fail);
  // Normal ends travel through pipe() as FINs; only when both sockets are gone is the connection over.
  const onClose = (): void => {
    if (--openSockets === 0) record();
  };
  // One side gone (closed, reset, or destroyed by a drain): the other is flushed and closed,
  // as Envoy closes the upstream with FlushWrite; otherwise it would stay open forever.
  upstream.on('close', () => { onClose(); if (!downstream.destroyed) downstream.destroySoon(); });
  downstream.on('close', () => { onClose(); if (!upstream.destroyed) upstream.destroySoon(); });
}
