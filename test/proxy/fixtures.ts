// xDS resources in exactly the shape the brief says pilot emits (wrapper types written
// as { value }, which is what packAny/protobufjs accepts), plus small test utilities.
import { TYPE_URL } from '../../api/xds/protos.js';
import net from 'node:net';
import http from 'node:http';

const ADS = { ads: {}, resourceApiVersion: 'V3' };
const ROUTER = [{ name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } }];

export function hcmRds(routeName: string, statPrefix = routeName): object {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typedConfig: { '@type': TYPE_URL.httpConnectionManager, statPrefix, rds: { routeConfigName: routeName, configSource: ADS }, httpFilters: ROUTER },
  };
}

export function tcpProxy(cluster: string): object {
  return { name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': TYPE_URL.tcpProxy, statPrefix: cluster, cluster } };
}

export function virtualOutbound(address: string, port: number): object {
  return {
    name: 'virtualOutbound',
    address: { socketAddress: { address, portValue: port } },
    useOriginalDst: { value: true },
    trafficDirection: 'OUTBOUND',
    filterChains: [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxy('PassthroughCluster')] }],
  };
}

export function serviceListener(port: number): object {
  return {
    name: `0.0.0.0_${port}`,
    address: { socketAddress: { address: '0.0.0.0', portValue: port } },
    bindToPort: { value: false },
    trafficDirection: 'OUTBOUND',
    filterChains: [{ filters: [hcmRds(String(port))] }],
  };
}

/**
 * The inbound listener for `appPorts`. With `downstreamTls` (pilot's DOWNSTREAM_MTLS) each port
 * is STRICT as pilot writes it: tls_inspector, a `transportProtocol: tls` chain carrying the
 * transport socket, and XFCC APPEND_FORWARD on its HCM.
 */
export function virtualInbound(address: string, port: number, appPorts: number[], downstreamTls?: object): object {
  const originalDst = { name: 'envoy.filters.listener.original_dst', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst' } };
  const tlsInspector = { name: 'envoy.filters.listener.tls_inspector', typedConfig: { '@type': TYPE_URL.tlsInspector } };
  const xfcc = downstreamTls ? { forwardClientCertDetails: 'APPEND_FORWARD', setCurrentClientCertDetails: { subject: { value: true }, dns: true, uri: true } } : {};
  return {
    name: 'virtualInbound',
    address: { socketAddress: { address, portValue: port } },
    trafficDirection: 'INBOUND',
    listenerFilters: downstreamTls ? [originalDst, tlsInspector] : [originalDst],
    filterChains: [
      ...appPorts.map((p) => ({
        name: `inbound|${p}||`,
        filterChainMatch: downstreamTls ? { destinationPort: { value: p }, transportProtocol: 'tls' } : { destinationPort: { value: p } },
        ...(downstreamTls ? { transportSocket: downstreamTls } : {}),
        filters: [{
          name: 'envoy.filters.network.http_connection_manager',
          typedConfig: {
            '@type': TYPE_URL.httpConnectionManager,
            statPrefix: `inbound_0.0.0.0_${p}`,
            ...xfcc,
            routeConfig: {
              name: `inbound|${p}||`,
              virtualHosts: [{ name: `inbound|http|${p}`, domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: `inbound|${p}||` } }] }],
            },
            httpFilters: ROUTER,
          },
        }],
      })),
      { name: 'virtualInbound-catchall', filters: [tcpProxy('InboundPassthroughCluster')] },
    ],
  };
}

export interface ServiceSpec {
  fqdn: string;
  port: number;
  clusterIP: string;
}

export function domainsFor(s: ServiceSpec): string[] {
  const [name, ns] = s.fqdn.split('.');
  const hosts = [s.fqdn, name, `${name}.${ns}`, `${name}.${ns}.svc`, s.clusterIP];
  return hosts.flatMap((h) => [h, `${h}:${s.port}`]);
}

export function virtualHost(s: ServiceSpec, route: object, extraRoutes: object[] = []): object {
  return { name: `${s.fqdn}:${s.port}`, domains: domainsFor(s), routes: [...extraRoutes, { match: { prefix: '/' }, route }] };
}

export function routeConfiguration(port: number, virtualHosts: object[]): object {
  return { name: String(port), virtualHosts };
}

export function outboundCluster(port: number, fqdn: string, subset = ''): string {
  return `outbound|${port}|${subset}|${fqdn}`;
}

export function edsCluster(name: string): object {
  return { name, type: 'EDS', edsClusterConfig: { edsConfig: ADS }, lbPolicy: 'ROUND_ROBIN', connectTimeout: { seconds: 1 } };
}

export function staticCluster(name: string, address: string, port: number): object {
  return {
    name, type: 'STATIC', connectTimeout: { seconds: 1 },
    loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address, portValue: port } } } }] }] },
  };
}

export function originalDstCluster(name: string): object {
  return { name, type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED', connectTimeout: { seconds: 1 } };
}

export function assignment(name: string, endpoints: Array<[string, number]>): object {
  return {
    clusterName: name,
    endpoints: [{ lbEndpoints: endpoints.map(([address, port]) => ({ endpoint: { address: { socketAddress: { address, portValue: port } } } })) }],
  };
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, host, () => resolve()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** A tiny HTTP app: answers `<name> <method> <path>` and echoes request details as headers. */
export async function startApp(name: string, host = '127.0.0.1', onRequest?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean): Promise<{ server: http.Server; port: number; seen: http.IncomingHttpHeaders[] }> {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    if (onRequest?.(req, res)) return;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = `${name} ${req.method} ${req.url}${chunks.length ? ' ' + Buffer.concat(chunks).toString() : ''}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'x-app': name, 'x-remote': req.socket.remoteAddress ?? '' });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  return { server, port: (server.address() as net.AddressInfo).port, seen };
}

export function closeServer(server: net.Server | http.Server): Promise<void> {
  if ('closeAllConnections' in server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
