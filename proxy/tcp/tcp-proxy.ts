// Envoy's TcpProxy filter: pick a host of the chain's cluster (or the original destination
// for passthrough clusters) and pipe bytes both ways, passing half-closes through.
import net from 'node:net';
import type { TcpProxyConfig } from '../xds/resources/listener.js';
import { originalDstTarget, type ConnectionContext, type ProxyRuntime } from '../runtime.js';
import { resolveCluster } from '../upstream/cluster-manager.js';
import { pickWeighted } from '../upstream/load-balancer.js';
import type { SocketAddress } from '../interception/original-dst.js';
import { tcpLabels } from '../stats/labels.js';

function chooseTarget(cfg: TcpProxyConfig, ctx: ConnectionContext, rt: ProxyRuntime): { cluster: string; host?: SocketAddress; timeoutMs: number; flag?: string } {
  const name = cfg.cluster ?? (cfg.weightedClusters ? pickWeighted(cfg.weightedClusters, cfg.weightedClusters.reduce((s, c) => s + c.weight, 0))?.name : undefined) ?? '';
  const r = resolveCluster(rt.config.current, name);
  if (!('cluster' in r)) return { cluster: name, timeoutMs: 0, flag: 'missing' in r ? 'NC' : 'UH' };
  const c = r.cluster;
  if (c.config.type === 'ORIGINAL_DST') return { cluster: name, host: originalDstTarget(ctx), timeoutMs: c.config.connectTimeoutMs };
  const ep = rt.clusters.pick(c);
  return ep ? { cluster: name, host: { address: ep.address, port: ep.port }, timeoutMs: c.config.connectTimeoutMs } : { cluster: name, timeoutMs: 0, flag: 'UH' };
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
  const labels = tcpLabels(ctx.direction, rt.identity, target.cluster, target.host.address, '');
  rt.metrics.tcpOpen(labels);
  let sent = 0;
  let received = 0;
  let closed = false;
  const upstream = net.connect({ host: target.host.address, port: target.host.port, allowHalfOpen: true });
  const connectTimer = setTimeout(() => upstream.destroy(new Error('connect timeout')), target.timeoutMs || 10_000);
  upstream.once('connect', () => clearTimeout(connectTimer));
  downstream.on('data', (c: Buffer) => { received += c.length; });
  upstream.on('data', (c: Buffer) => { sent += c.length; });
  // pipe() ends the destination when the source ends: a half-close crosses the proxy as a FIN.
  downstream.pipe(upstream);
  upstream.pipe(downstream);
  let openSockets = 2;
  const record = (): void => {
    if (closed) return;
    closed = true;
    clearTimeout(connectTimer);
    rt.metrics.tcpClose(labels, sent, received);
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
  upstream.on('close', onClose);
  downstream.on('close', onClose);
}
