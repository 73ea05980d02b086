// The generator table: one entry per xDS type, each a pure function of (snapshot, proxy).
// `proxyClass` says which part of the proxy the output depends on, so proxies of one class
// share generated (and serialized) resources within a snapshot.
import { TYPE_URL } from '../../../api/xds/protos.js';
import type { PushContext } from '../../model/push-context.js';
import type { Proxy } from '../../model/proxy.js';
import { generateClusters } from './cds.js';
import { generateEndpoints } from './eds.js';
import { generateListeners } from './lds.js';
import { generateRoutes } from './rds.js';
import { sidecarScope } from '../../model/sidecar-scope.js';
import { gatewayClusters, gatewayListeners, gatewayRoutes, gatewaySecrets } from './gateway.js';
import { inboundSecurityClass } from '../../security/inbound.js';

export interface NamedResource { name: string; resource: object }

export type XdsTypeName = 'cds' | 'eds' | 'lds' | 'rds' | 'sds';

export interface XdsGenerator {
  type: XdsTypeName;
  typeUrl: string;
  /** Wildcard types send every resource; the others send what the proxy asks for by name. */
  wildcard: boolean;
  proxyClass(proxy: Proxy, push: PushContext): string;
  generate(push: PushContext, proxy: Proxy): NamedResource[];
}

// Routes and TCP listeners depend on the proxy's namespace (exportTo, short names) and on
// its labels only where a sourceLabels match reads them; clusters on its namespace
// (DestinationRule lookup) and its inbound ports.
export const labelsKey = (p: Proxy, push: PushContext): string => {
  const keys = push.sourceLabelKeys();
  return keys.length ? JSON.stringify(keys.map((k) => p.workload.labels[k] ?? null)) : '';
};
const inboundKey = (p: Proxy): string => p.inbound.map((i) => `${i.port}${i.http ? '' : '/tcp'}`).join(',');
// The Sidecar resource that applies (and the namespace, for exportTo) scopes what a proxy sees.
const scopeKey = (p: Proxy, push: PushContext): string => (p.type === 'router' ? p.namespace : sidecarScope(push, p).key);
const clusterClass = (p: Proxy, push: PushContext): string => `${scopeKey(p, push)}|${inboundKey(p)}`;
const listenerClass = (p: Proxy, push: PushContext): string => `${scopeKey(p, push)}|${inboundKey(p)}|${labelsKey(p, push)}|${inboundSecurityClass(push, p)}`;
// Gateway proxies (routers) get other resources than sidecars; which Gateways select them
// depends on all their labels.
const routerAware = (cls: (p: Proxy, push: PushContext) => string) => (p: Proxy, push: PushContext): string =>
  p.type === 'router' ? `router|${p.namespace}|${inboundKey(p)}|${JSON.stringify(p.workload.labels)}` : cls(p, push);

export const GENERATORS: readonly XdsGenerator[] = [
  {
    type: 'cds', typeUrl: TYPE_URL.cluster, wildcard: true, proxyClass: routerAware(clusterClass),
    generate: (push, proxy) => (proxy.type === 'router' ? gatewayClusters(push, proxy) : generateClusters(push, proxy)).map((c) => ({ name: c.name, resource: c })),
  },
  {
    type: 'eds', typeUrl: TYPE_URL.clusterLoadAssignment, wildcard: false, proxyClass: (p, push) => scopeKey(p, push),
    generate: (push, proxy) => generateEndpoints(push, proxy.namespace, proxy.type === 'router' ? undefined : sidecarScope(push, proxy)).map((c) => ({ name: c.clusterName, resource: c })),
  },
  {
    type: 'lds', typeUrl: TYPE_URL.listener, wildcard: true, proxyClass: routerAware(listenerClass),
    generate: (push, proxy) => (proxy.type === 'router' ? gatewayListeners(push, proxy) : generateListeners(push, proxy)).map((l) => ({ name: l.name, resource: l })),
  },
  {
    type: 'rds', typeUrl: TYPE_URL.routeConfiguration, wildcard: false, proxyClass: routerAware((p, push) => `${scopeKey(p, push)}|${labelsKey(p, push)}`),
    generate: (push, proxy) => (proxy.type === 'router' ? gatewayRoutes(push, proxy) : generateRoutes(push, proxy)).map((r) => ({ name: r.name, resource: r })),
  },
  {
    // Gateway credentials (credentialName) by name, from the proxy's own namespace only.
    // Sidecars resolve their SDS names (`default`, `ROOTCA`) themselves and get none.
    type: 'sds', typeUrl: TYPE_URL.secret, wildcard: false,
    proxyClass: (p) => (p.type === 'router' ? `router|${p.namespace}` : 'none'),
    generate: (push, proxy) => (proxy.type === 'router' ? gatewaySecrets(push, proxy) : []),
  },
];

/** Push order: clusters before endpoints before listeners before routes (then secrets, asked for by listeners). */
export const PUSH_ORDER: readonly string[] = GENERATORS.map((g) => g.typeUrl);

export function generatorFor(typeUrl: string): XdsGenerator | undefined {
  return GENERATORS.find((g) => g.typeUrl === typeUrl);
}

export { generateClusters, generateEndpoints, generateListeners, generateRoutes };
