// Istio Gateways as a gateway proxy (router) sees them: the Gateways whose selector matches
// its labels, their servers merged by the port the proxy listens on (the targetPort of the
// gateway Service port that has the server's number, as Istio does), and the
// VirtualServices bound to each Gateway by `spec.gateways`, with Istio's host rules.
import type { Gateway, GatewayServer } from '../../api/istio/index.js';
import type { PushContext } from './push-context.js';
import type { Proxy } from './proxy.js';
import { expandDelegates } from './delegate.js';
import { byAge, exportedTo, virtualServiceModel, type VirtualServiceModel } from './istio-config.js';

/** The reserved gateway name of every sidecar. */
export const MESH_GATEWAY = 'mesh';

export interface GatewayServerModel {
  /** `<namespace>/<name>` of the Gateway. */
  gateway: string;
  server: GatewayServer;
  /** The server's hosts split into namespace and host (namespace `*` when none was given). */
  hosts: readonly { namespace: string; host: string }[];
}

/** Servers sharing one port of the gateway proxy. */
export interface GatewayPortModel {
  /** The port the proxy binds (the gateway Service's targetPort, else the server port). */
  port: number;
  /** The server port number as written in the Gateways. */
  serverPort: number;
  protocol: string;
  servers: readonly GatewayServerModel[];
}

export interface BoundVirtualService { vs: VirtualServiceModel; gateways: readonly string[] }

const gatewayVsCache = new WeakMap<PushContext, BoundVirtualService[]>();

/** `ns/name` for a gateway reference of a VirtualService: a short name is in the VirtualService's namespace. */
export function gatewayRef(ref: string, vsNamespace: string): string {
  if (ref === MESH_GATEWAY || ref.includes('/')) return ref;
  return `${vsNamespace}/${ref}`;
}

/** Every VirtualService of the snapshot naming at least one Gateway (other than `mesh`), oldest first. */
export function gatewayVirtualServices(push: PushContext): BoundVirtualService[] {
  const cached = gatewayVsCache.get(push);
  if (cached) return cached;
  const byName = new Map(push.inputs.virtualServices.map((v) => [`${v.metadata.namespace ?? 'default'}/${v.metadata.name}`, v]));
  const out = [...push.inputs.virtualServices].sort(byAge).flatMap((raw) => {
    const namespace = raw.metadata.namespace ?? 'default';
    const gateways = (raw.spec.gateways ?? []).map((g) => gatewayRef(g, namespace)).filter((g) => g !== MESH_GATEWAY);
    // Delegate problems are reported by the snapshot build for mesh rules; gateway-only ones are not reported yet.
    return gateways.length ? [{ vs: virtualServiceModel(expandDelegates(raw, byName, push.domain, () => {}), push.domain), gateways }] : [];
  });
  gatewayVsCache.set(push, out);
  return out;
}

/** Gateways whose selector matches the proxy's labels (an empty selector matches every gateway proxy). */
export function gatewaysForProxy(push: PushContext, proxy: Pick<Proxy, 'workload'>): Gateway[] {
  return [...(push.inputs.gateways ?? [])].sort(byAge).filter((gw) => {
    const sel = gw.spec.selector ?? {};
    return Object.entries(sel).every(([k, v]) => proxy.workload.labels[k] === v);
  });
}

function splitHost(h: string, gatewayNamespace: string): { namespace: string; host: string } {
  const i = h.indexOf('/');
  if (i < 0) return { namespace: '*', host: h };
  const ns = h.slice(0, i);
  return { namespace: ns === '.' ? gatewayNamespace : ns, host: h.slice(i + 1) };
}

export type ProtocolFamily = 'http' | 'tls' | 'tcp';

/** How a gateway port is served: an HTTP connection manager, SNI-selected TLS chains, or TCP. */
export function protocolFamily(protocol: string): ProtocolFamily {
  if (protocol === 'HTTPS' || protocol === 'TLS') return 'tls';
  if (protocol === 'HTTP' || protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-WEB') return 'http';
  return 'tcp';
}

/** The port the proxy listens on for a server port: a gateway Service port's target, as Istio maps it. */
function listenPort(proxy: Pick<Proxy, 'inbound'>, serverPort: number): number {
  for (const ib of proxy.inbound) if (ib.services.some((s) => s.servicePort === serverPort)) return ib.port;
  return serverPort;
}

/** The servers of every Gateway selecting the proxy, grouped by the port it binds. */
export function gatewayPorts(push: PushContext, proxy: Pick<Proxy, 'workload' | 'inbound'>): GatewayPortModel[] {
  const byPort = new Map<number, { serverPort: number; protocol: string; servers: GatewayServerModel[] }>();
  for (const gw of gatewaysForProxy(push, proxy)) {
    const namespace = gw.metadata.namespace ?? 'default';
    for (const server of gw.spec.servers ?? []) {
      if (!server?.port?.number) continue;
      const port = listenPort(proxy, server.port.number);
      const protocol = (server.port.protocol ?? 'HTTP').toUpperCase();
      const entry = byPort.get(port) ?? { serverPort: server.port.number, protocol, servers: [] };
      // Istio keeps the first protocol seen on a port; a server of another family is dropped
      // (HTTPS and TLS servers share a port: the SNI picks the server).
      if (protocolFamily(entry.protocol) !== protocolFamily(protocol)) continue;
      entry.servers.push({ gateway: `${namespace}/${gw.metadata.name}`, server, hosts: (server.hosts ?? []).map((h) => splitHost(h, namespace)) });
      byPort.set(port, entry);
    }
  }
  return [...byPort.entries()].sort((a, b) => a[0] - b[0]).map(([port, e]) => ({ port, ...e }));
}

/**
 * Istio's host intersection: the more specific of two hosts when one covers the other
 * (`*` covers all, `*.example.com` covers `a.example.com` and `*.a.example.com`), else none.
 */
export function intersectHosts(a: string, b: string): string | undefined {
  if (a === b) return a;
  if (a === '*') return b;
  if (b === '*') return a;
  if (a.startsWith('*.') && b.endsWith(a.slice(1))) return b;
  if (b.startsWith('*.') && a.endsWith(b.slice(1))) return a;
  return undefined;
}

/**
 * For one server: each host (in first-seen order) with the VirtualServices that serve it
 * there, oldest first. A VirtualService is bound when it names the server's Gateway, is
 * exported to the proxy's namespace and lives in a namespace the server host allows.
 */
export function serverVirtualHosts(push: PushContext, server: GatewayServerModel, proxyNamespace: string): Map<string, VirtualServiceModel[]> {
  const out = new Map<string, VirtualServiceModel[]>();
  for (const { vs, gateways } of gatewayVirtualServices(push)) {
    if (!gateways.includes(server.gateway)) continue;
    if (!exportedTo(vs.exportTo, vs.namespace, proxyNamespace)) continue;
    for (const vsHost of vs.hosts) {
      for (const sh of server.hosts) {
        if (sh.namespace !== '*' && sh.namespace !== vs.namespace) continue;
        const host = intersectHosts(vsHost, sh.host);
        if (!host) continue;
        const list = out.get(host) ?? [];
        if (!list.includes(vs)) list.push(vs);
        out.set(host, list);
      }
    }
  }
  return out;
}
