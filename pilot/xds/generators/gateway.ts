// xDS for gateway proxies (node type `router`): one listener per gateway port bound to
// 0.0.0.0:<port> (no interception). HTTP ports: an HCM reading route configuration
// `http.<port>`, whose virtual hosts come from the VirtualServices bound to the Gateways'
// servers (hosts of servers with httpsRedirect answer plaintext with 301). HTTPS/TLS ports:
// a tls_inspector and one filter chain per server, selected by SNI (the server's hosts):
// terminating servers (SIMPLE, MUTUAL, ISTIO_MUTUAL) carry a DownstreamTlsContext whose
// certificate comes over SDS (`kubernetes://<credentialName>`) and an HCM reading
// `https.<port>.<portName>.<gateway>.<namespace>` (or, for TLS, a TcpProxy from the bound
// tcp routes); PASSTHROUGH servers get one chain per bound `tls` route's SNI hosts. A
// server that cannot be served (see gateway-tls.ts) is left out; the others keep working.
// Clusters and endpoints are the mesh's outbound ones; a gateway has no inbound side.
import { TYPE_URL } from '../../../api/xds/protos.js';
import type { GatewayServer } from '../../../api/istio/index.js';
import type { PushContext } from '../../model/push-context.js';
import type { Proxy } from '../../model/proxy.js';
import { gatewayPorts, gatewayVirtualServices, intersectHosts, protocolFamily, serverVirtualHosts, type GatewayPortModel, type GatewayServerModel } from '../../model/gateway.js';
import { SDS_PREFIX, CA_SUFFIX, sdsResources, serverTlsProblem, terminatesTls, tlsMode } from '../../model/gateway-tls.js';
import type { VirtualServiceModel } from '../../model/istio-config.js';
import { destinationCluster, virtualServiceRoutes, weightedDestinations, type RouteProxy } from './http-route.js';
import { outboundHttpFilters } from './lds.js';
import { generateOutboundClusters } from './cds.js';
import { outboundListenerName } from './names.js';
import { SDS_SOURCE, TLS_INSPECTOR, TLS_SOCKET } from '../../security/tls-context.js';
import {
  ADS_CONFIG_SOURCE, HCM_FILTER, socketAddress, tcpProxy, weightedTcpProxy,
  type Cluster, type FilterChain, type Json, type Listener, type RouteConfiguration, type VirtualHost,
} from './envoy.js';

export type GatewayProxy = Pick<Proxy, 'namespace' | 'workload' | 'inbound'>;

/** Istio's gateway route configuration name of a plaintext HTTP port. */
export function gatewayRouteName(port: number): string {
  return `http.${port}`;
}

/** Istio's route configuration name of one HTTPS server (each has its own). */
export function httpsRouteName(server: GatewayServerModel): string {
  const [ns, name] = server.gateway.split('/');
  return `https.${server.server.port.number}.${server.server.port.name ?? ''}.${name}.${ns}`;
}

const ports = (push: PushContext, proxy: GatewayProxy, family: 'http' | 'tls'): GatewayPortModel[] =>
  gatewayPorts(push, proxy).filter((p) => protocolFamily(p.protocol) === family);

function hcm(port: number, rds: string, extra: Json = {}): { name: string; typedConfig: Json } {
  return {
    name: HCM_FILTER,
    typedConfig: {
      '@type': TYPE_URL.httpConnectionManager,
      statPrefix: `outbound_0.0.0.0_${port}`,
      rds: { routeConfigName: rds, configSource: ADS_CONFIG_SOURCE },
      httpFilters: outboundHttpFilters(),
      ...extra,
    },
  };
}

// Istio's gateway defaults: TLS 1.2 at least; the client's choice among h2 and HTTP/1.1.
const TLS_VERSION: Record<string, string> = { TLS_AUTO: 'TLS_AUTO', TLSV1_0: 'TLSv1_0', TLSV1_1: 'TLSv1_1', TLSV1_2: 'TLSv1_2', TLSV1_3: 'TLSv1_3' };

/** The DownstreamTlsContext of a terminating server (Istio's gateway shapes). */
export function serverTlsContext(server: GatewayServer, http: boolean): { name: string; typedConfig: Json } {
  const tls = server.tls ?? {};
  const mode = tlsMode(server);
  const common: Json = {};
  let requireClientCertificate = false;
  const sans = (tls.subjectAltNames ?? []).map((exact) => ({ exact }));
  if (mode === 'ISTIO_MUTUAL') {
    common.tlsCertificateSdsSecretConfigs = [{ name: 'default', sdsConfig: SDS_SOURCE }];
    common.combinedValidationContext = { defaultValidationContext: sans.length ? { matchSubjectAltNames: sans } : {}, validationContextSdsSecretConfig: { name: 'ROOTCA', sdsConfig: SDS_SOURCE } };
    requireClientCertificate = true;
  } else if (tls.credentialName) {
    const name = `${SDS_PREFIX}${tls.credentialName}`;
    common.tlsCertificateSdsSecretConfigs = [{ name, sdsConfig: ADS_CONFIG_SOURCE }];
    if (mode !== 'SIMPLE') {
      common.combinedValidationContext = { defaultValidationContext: sans.length ? { matchSubjectAltNames: sans } : {}, validationContextSdsSecretConfig: { name: `${name}${CA_SUFFIX}`, sdsConfig: ADS_CONFIG_SOURCE } };
    }
    requireClientCertificate = mode === 'MUTUAL';
  } else {
    common.tlsCertificates = [{ certificateChain: { filename: tls.serverCertificate }, privateKey: { filename: tls.privateKey } }];
    if (mode !== 'SIMPLE') common.validationContext = { trustedCa: { filename: tls.caCertificates }, ...(sans.length ? { matchSubjectAltNames: sans } : {}) };
    requireClientCertificate = mode === 'MUTUAL';
  }
  const params: Json = { tlsMinimumProtocolVersion: TLS_VERSION[tls.minProtocolVersion ?? 'TLSV1_2'] ?? 'TLSv1_2' };
  if (tls.maxProtocolVersion) params.tlsMaximumProtocolVersion = TLS_VERSION[tls.maxProtocolVersion] ?? 'TLS_AUTO';
  if (tls.cipherSuites?.length) params.cipherSuites = tls.cipherSuites;
  common.tlsParams = params;
  if (http) common.alpnProtocols = ['h2', 'http/1.1'];
  return {
    name: TLS_SOCKET,
    typedConfig: { '@type': TYPE_URL.downstreamTlsContext, requireClientCertificate: { value: requireClientCertificate }, commonTlsContext: common },
  };
}

/** SNI names of a server: its hosts, none when one of them is `*` (then it takes any SNI). */
function serverNames(server: GatewayServerModel): string[] | undefined {
  const hosts = server.hosts.map((h) => h.host);
  return hosts.includes('*') ? undefined : [...new Set(hosts)];
}

/** The TcpProxy of a TLS server that terminates: the first bound tcp rule for its port. */
function terminatedTcpFilter(push: PushContext, server: GatewayServerModel, proxyNamespace: string): { name: string; typedConfig: Json } | undefined {
  const port = server.server.port.number;
  const statPrefix = `outbound_0.0.0.0_${port}`;
  for (const vss of serverVirtualHosts(push, server, proxyNamespace).values()) {
    for (const vs of vss) {
      for (const rule of vs.tcp) {
        if (rule.match?.length && !rule.match.some((m) => m.port === undefined || m.port === port)) continue;
        const dests = (rule.route ?? []).filter((d) => d.destination?.host);
        if (!dests.length) continue;
        const weighted = weightedDestinations(dests).map(({ d, weight }) => ({ name: destinationCluster(push, vs.namespace, d.destination, port), weight }));
        return weighted.length === 1 ? { ...tcpProxy(weighted[0].name), typedConfig: { ...tcpProxy(weighted[0].name).typedConfig, statPrefix } } : weightedTcpProxy(statPrefix, weighted);
      }
    }
  }
  return undefined;
}

/** PASSTHROUGH: a chain per bound VirtualService tls rule, by the SNI hosts the server allows. */
function passthroughChains(push: PushContext, server: GatewayServerModel, proxyNamespace: string, seen: Set<string>): FilterChain[] {
  const port = server.server.port.number;
  const chains: FilterChain[] = [];
  // Host and namespace binding as for HTTP: the VirtualService must serve one of the server's hosts.
  const bound = new Set([...serverVirtualHosts(push, server, proxyNamespace).values()].flat());
  for (const { vs } of gatewayVirtualServices(push)) {
    if (!bound.has(vs)) continue;
    (vs.tls ?? []).forEach((rule, i) => {
      const dests = (rule.route ?? []).filter((d) => d.destination?.host);
      if (!dests.length) return;
      const statPrefix = `outbound_0.0.0.0_${port}`;
      const weighted = weightedDestinations(dests).map(({ d, weight }) => ({ name: destinationCluster(push, vs.namespace, d.destination, port), weight }));
      const filter = weighted.length === 1 ? { ...tcpProxy(weighted[0].name), typedConfig: { ...tcpProxy(weighted[0].name).typedConfig, statPrefix } } : weightedTcpProxy(statPrefix, weighted);
      for (const m of rule.match ?? []) {
        if (m.port !== undefined && m.port !== port) continue;
        if (m.gateways?.length && !m.gateways.some((g) => g === server.gateway || `${vs.namespace}/${g}` === server.gateway)) continue;
        const names = (m.sniHosts ?? []).filter((sni) => server.hosts.some((h) => intersectHosts(sni, h.host) !== undefined) && !seen.has(sni));
        if (!names.length) continue;
        for (const n of names) seen.add(n);
        chains.push({ name: `${vs.namespace}/${vs.name}.tls[${i}]`, filterChainMatch: { serverNames: names }, filters: [filter] });
      }
    });
  }
  return chains;
}

/** The servers of a port the proxy can be given (the others are reported, not served). */
function servable(push: PushContext, proxy: GatewayProxy, servers: readonly GatewayServerModel[]): GatewayServerModel[] {
  return servers.filter((s) => serverTlsProblem(push, s.server, proxy.namespace) === undefined);
}

function tlsListener(push: PushContext, proxy: GatewayProxy, port: GatewayPortModel): Listener | undefined {
  const chains: FilterChain[] = [];
  const matchKeys = new Set<string>();
  const sni = new Set<string>();
  for (const server of servable(push, proxy, port.servers)) {
    if (!terminatesTls(server.server)) { chains.push(...passthroughChains(push, server, proxy.namespace, sni)); continue; }
    const names = serverNames(server);
    // Envoy rejects two chains with the same match: the first server for a set of names wins.
    const key = JSON.stringify(names ?? null);
    if (matchKeys.has(key)) continue;
    const http = (server.server.port.protocol ?? '').toUpperCase() === 'HTTPS';
    const filter = http ? hcm(port.port, httpsRouteName(server), { forwardClientCertDetails: 'SANITIZE_SET', setCurrentClientCertDetails: { subject: { value: true }, dns: true, uri: true } }) : terminatedTcpFilter(push, server, proxy.namespace);
    if (!filter) continue;
    matchKeys.add(key);
    chains.push({
      name: `${server.gateway}:${server.server.port.name ?? server.server.port.number}`,
      ...(names ? { filterChainMatch: { serverNames: names } } : {}),
      transportSocket: serverTlsContext(server.server, http),
      filters: [filter],
    });
  }
  if (!chains.length) return undefined;
  return { name: outboundListenerName(port.port), address: socketAddress('0.0.0.0', port.port), trafficDirection: 'OUTBOUND', listenerFilters: [TLS_INSPECTOR], filterChains: chains };
}

export function gatewayListeners(push: PushContext, proxy: GatewayProxy): Listener[] {
  const out: Listener[] = [];
  for (const p of gatewayPorts(push, proxy)) {
    const family = protocolFamily(p.protocol);
    if (family === 'http') {
      out.push({
        name: outboundListenerName(p.port),
        address: socketAddress('0.0.0.0', p.port),
        trafficDirection: 'OUTBOUND',
        filterChains: [{ filters: [hcm(p.port, gatewayRouteName(p.port))] }],
      });
    } else if (family === 'tls') {
      const l = tlsListener(push, proxy, p);
      if (l) out.push(l);
    }
  }
  return out;
}

function domainsFor(host: string): string[] {
  return host === '*' ? ['*'] : [host, `${host}:*`];
}

/** Virtual hosts of some servers of one port: each host with its VirtualServices (merged, oldest first). */
function virtualHosts(push: PushContext, proxy: GatewayProxy, servers: readonly GatewayServerModel[], serverPort: number): VirtualHost[] {
  const hosts = new Map<string, { vss: VirtualServiceModel[]; gateway: string; redirect: boolean }>();
  for (const server of servers) {
    for (const [host, vss] of serverVirtualHosts(push, server, proxy.namespace)) {
      const seen = hosts.get(host);
      if (!seen) hosts.set(host, { vss: [...vss], gateway: server.gateway, redirect: server.server.tls?.httpsRedirect === true });
      else for (const vs of vss) if (!seen.vss.includes(vs)) seen.vss.push(vs);
    }
  }
  const out: VirtualHost[] = [...hosts.entries()].map(([host, { vss, gateway, redirect }]) => {
    const rp: RouteProxy = { namespace: proxy.namespace, labels: proxy.workload.labels, gateway };
    const vh: VirtualHost = { name: `${host}:${serverPort}`, domains: domainsFor(host), routes: vss.flatMap((vs) => virtualServiceRoutes(push, vs, serverPort, rp)) };
    return redirect ? { ...vh, requireTls: 'ALL' } : vh;
  });
  // Istio answers requests for hosts no VirtualService serves with 404.
  if (!out.length) out.push({ name: `blackhole:${serverPort}`, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, directResponse: { status: 404 } }] });
  return out;
}

export function gatewayRoutes(push: PushContext, proxy: GatewayProxy): RouteConfiguration[] {
  const out: RouteConfiguration[] = ports(push, proxy, 'http').map(({ port, serverPort, servers }) => ({ name: gatewayRouteName(port), virtualHosts: virtualHosts(push, proxy, servers, serverPort) }));
  // One per terminating HTTPS server. A missing Secret does not matter here: the listener
  // leaves the server out until the Secret exists, and then finds its routes ready.
  for (const p of ports(push, proxy, 'tls')) {
    for (const server of p.servers) {
      if ((server.server.port.protocol ?? '').toUpperCase() !== 'HTTPS' || !terminatesTls(server.server)) continue;
      out.push({ name: httpsRouteName(server), virtualHosts: virtualHosts(push, proxy, [server], p.serverPort) });
    }
  }
  return out;
}

export function gatewayClusters(push: PushContext, proxy: GatewayProxy): Cluster[] {
  return generateOutboundClusters(push, proxy.namespace);
}

/**
 * SDS for a gateway proxy: the credentials of its own namespace only (Istio allows a
 * gateway the Secrets its identity may read; namespace equality here). Named resources,
 * so each proxy receives just the names its listeners ask for.
 */
export function gatewaySecrets(push: PushContext, proxy: Pick<Proxy, 'namespace'>): { name: string; resource: Json }[] {
  return sdsResources(push, proxy.namespace).map(({ name, material }) => {
    const b64 = (pem: string): string => Buffer.from(pem, 'utf8').toString('base64');
    const resource: Json = material.cert
      ? { name, tlsCertificate: { certificateChain: { inlineBytes: b64(material.cert.certChainPem) }, privateKey: { inlineBytes: b64(material.cert.keyPem) } } }
      : { name, validationContext: { trustedCa: { inlineBytes: b64(material.caPem ?? '') } } };
    return { name, resource };
  });
}
