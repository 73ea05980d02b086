// `trellis proxy-config listeners|routes|clusters|endpoints <pod>[.<namespace>]`: what pilot
// last sent a proxy, read from pilot's /debug/config_dump?proxyID= (Envoy's ConfigDump
// shape) and printed as istioctl prints it, or as JSON with `-o json`. Pilot is found like
// `trellis proxy-status` finds it (the istiod pods' debug port), or given with --pilot URL.
import { KubeClient } from '../api/kube/index.js';
import { stringFlag, type ParsedArgs } from './args.js';
import { kubeconfigFlag, pilotDebugURLs } from './proxy-status.js';

export const PROXY_CONFIG_KINDS = ['listeners', 'routes', 'clusters', 'endpoints'] as const;
export type ProxyConfigKind = typeof PROXY_CONFIG_KINDS[number];

type Obj = Record<string, unknown>;
export interface ConfigDump { configs: Obj[] }

const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? v as Obj : {});
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? v.map(obj) : []);
const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

/** The resources of one kind in a dump, in the order pilot sent them. */
export function resourcesOf(dump: ConfigDump, kind: ProxyConfigKind): Obj[] {
  const section = (suffix: string): Obj => dump.configs.find((c) => str(c['@type']).endsWith(suffix)) ?? {};
  switch (kind) {
    case 'listeners': return arr(section('ListenersConfigDump').dynamicListeners).map((l) => obj(obj(l.activeState).listener));
    case 'clusters': return arr(section('ClustersConfigDump').dynamicActiveClusters).map((c) => obj(c.cluster));
    case 'routes': return arr(section('RoutesConfigDump').dynamicRouteConfigs).map((r) => obj(r.routeConfig));
    case 'endpoints': return arr(section('EndpointsConfigDump').dynamicEndpointConfigs).map((e) => obj(e.endpointConfig));
  }
}

function table(header: string[], rows: string[][]): string {
  const lines = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  return lines.map((l) => l.map((c, i) => c.padEnd(widths[i])).join('     ').trimEnd()).join('\n');
}

export interface ProxyConfigFilters { fqdn?: string; port?: string; subset?: string; direction?: string; cluster?: string; name?: string }

export function formatClusters(clusters: Obj[], f: ProxyConfigFilters = {}): string {
  const rows = clusters.map((c) => {
    const name = str(c.name);
    const parts = name.split('|');
    const type = str(c.type) || (c.clusterType ? 'CUSTOM' : 'STATIC');
    if (parts.length === 4) return [parts[3] || '', parts[1], parts[2] || '-', parts[0], type];
    return [name, '-', '-', '-', type];
  }).filter(([fqdn, port, subset, dir]) => (!f.fqdn || fqdn === f.fqdn || fqdn.startsWith(`${f.fqdn}.`))
    && (!f.port || port === f.port) && (!f.subset || subset === f.subset) && (!f.direction || dir === f.direction));
  return table(['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE'], rows);
}

function chainMatch(m: Obj): string {
  const parts: string[] = [];
  if (m.destinationPort !== undefined) parts.push(`port ${str(obj(m.destinationPort).value ?? m.destinationPort)}`);
  if (m.transportProtocol) parts.push(`transport ${str(m.transportProtocol)}`);
  if (Array.isArray(m.serverNames) && m.serverNames.length) parts.push(`SNI ${m.serverNames.join(',')}`);
  if (Array.isArray(m.applicationProtocols) && m.applicationProtocols.length) parts.push(`ALPN ${m.applicationProtocols.join(',')}`);
  if (Array.isArray(m.prefixRanges) && m.prefixRanges.length) parts.push(`addr ${arr(m.prefixRanges).map((r) => `${str(r.addressPrefix)}/${str(r.prefixLen ?? 32)}`).join(',')}`);
  return parts.length ? parts.join('; ') : 'ALL';
}

function chainDestination(chain: Obj): string {
  for (const filter of arr(chain.filters)) {
    const cfg = obj(filter.typedConfig);
    const type = str(cfg['@type']);
    if (type.endsWith('HttpConnectionManager')) {
      const rds = obj(cfg.rds);
      if (rds.routeConfigName) return `Route: ${str(rds.routeConfigName)}`;
      return 'Inline Route';
    }
    if (type.endsWith('TcpProxy')) return `Cluster: ${str(cfg.cluster) || (cfg.weightedClusters ? 'weighted' : '-')}`;
  }
  return 'Non-HTTP/Non-TCP';
}

export function formatListeners(listeners: Obj[], f: ProxyConfigFilters = {}): string {
  const rows: string[][] = [];
  for (const l of listeners) {
    const sa = obj(obj(l.address).socketAddress);
    const addr = str(sa.address) || '-';
    const port = str(sa.portValue) || '-';
    if (f.port && port !== f.port) continue;
    const chains = [...arr(l.filterChains), ...(l.defaultFilterChain ? [obj(l.defaultFilterChain)] : [])];
    if (!chains.length) rows.push([addr, port, 'ALL', l.apiListener ? 'API listener' : '-']);
    for (const c of chains) rows.push([addr, port, chainMatch(obj(c.filterChainMatch)), chainDestination(c)]);
  }
  return table(['ADDRESSES', 'PORT', 'MATCH', 'DESTINATION'], rows);
}

function routeMatch(m: Obj): string {
  const path = m.prefix !== undefined ? `${str(m.prefix)}*` : m.path !== undefined ? str(m.path) : m.safeRegex ? `regex ${str(obj(m.safeRegex).regex)}` : '/*';
  const headers = arr(m.headers).map((h) => str(h.name)).filter(Boolean);
  return headers.length ? `${path} (headers ${headers.join(',')})` : path;
}

export function formatRoutes(routes: Obj[], f: ProxyConfigFilters = {}): string {
  const rows: string[][] = [];
  for (const rc of routes) {
    const name = str(rc.name);
    if (f.name && name !== f.name) continue;
    for (const vh of arr(rc.virtualHosts)) {
      const domains = Array.isArray(vh.domains) ? vh.domains.map(str) : [];
      const shown = domains.length > 1 ? `${domains[0]} +${domains.length - 1} more...` : (domains[0] ?? '-');
      for (const r of arr(vh.routes)) {
        const vs = str(obj(obj(obj(r.metadata).filterMetadata).istio).config) || '-';
        rows.push([name, str(vh.name), shown, routeMatch(obj(r.match)), vs]);
      }
    }
  }
  return table(['NAME', 'VHOST NAME', 'DOMAINS', 'MATCH', 'VIRTUAL SERVICE'], rows);
}

export function formatEndpoints(assignments: Obj[], f: ProxyConfigFilters = {}): string {
  const rows: string[][] = [];
  for (const cla of assignments) {
    const cluster = str(cla.clusterName);
    if (f.cluster && cluster !== f.cluster) continue;
    for (const locality of arr(cla.endpoints)) {
      for (const lb of arr(locality.lbEndpoints)) {
        const sa = obj(obj(obj(obj(lb.endpoint).address).socketAddress));
        rows.push([`${str(sa.address)}:${str(sa.portValue)}`, str(lb.healthStatus) || 'HEALTHY', 'OK', cluster]);
      }
    }
  }
  return table(['ENDPOINT', 'STATUS', 'OUTLIER CHECK', 'CLUSTER'], rows);
}

export function formatProxyConfig(dump: ConfigDump, kind: ProxyConfigKind, f: ProxyConfigFilters = {}): string {
  const rs = resourcesOf(dump, kind);
  switch (kind) {
    case 'listeners': return formatListeners(rs, f);
    case 'routes': return formatRoutes(rs, f);
    case 'clusters': return formatClusters(rs, f);
    case 'endpoints': return formatEndpoints(rs, f);
  }
}

/** `<pod>` or `<pod>.<namespace>` (default namespace `default`) -> pilot's proxyID. */
export function proxyIdOf(target: string, namespace?: string): string {
  if (namespace) return `${target}.${namespace}`;
  return target.includes('.') ? target : `${target}.default`;
}

/** Fetches a proxy's config dump from the first pilot that has it connected. */
export async function fetchConfigDump(urls: string[], proxyID: string): Promise<ConfigDump> {
  const misses: string[] = [];
  for (const url of urls) {
    const res = await fetch(`${url}/debug/config_dump?proxyID=${encodeURIComponent(proxyID)}`);
    if (res.ok) return (await res.json()) as ConfigDump;
    misses.push(`${url}: ${res.status} ${(await res.text()).trim()}`);
  }
  throw new Error(`proxy ${proxyID} is not connected to pilot (${misses.join('; ')})`);
}

export async function proxyConfig(args: ParsedArgs): Promise<void> {
  const [kindArg, target] = args.positional;
  const kind = PROXY_CONFIG_KINDS.find((k) => k === kindArg || `${k.slice(0, -1)}` === kindArg);
  if (!kind) throw new Error(`proxy-config: want one of ${PROXY_CONFIG_KINDS.join('|')}, got '${kindArg ?? ''}'`);
  if (!target) throw new Error('proxy-config: want a pod: trellis proxy-config <kind> <pod>[.<namespace>]');
  const output = stringFlag(args, 'o', stringFlag(args, 'output', 'short'));
  if (output !== 'short' && output !== 'json') throw new Error(`proxy-config: -o ${output}: want json or short`);
  const ns = args.flags.get('n') ?? args.flags.get('namespace');
  const proxyID = proxyIdOf(target, typeof ns === 'string' ? ns : undefined);
  let urls: string[];
  const pilot = args.flags.get('pilot');
  if (typeof pilot === 'string') urls = [pilot.replace(/\/$/, '')];
  else {
    const client = KubeClient.fromKubeconfig(kubeconfigFlag(args), 'trellis-cli');
    try { urls = (await pilotDebugURLs(client)).map((p) => p.url); } finally { await client.close(); }
  }
  const dump = await fetchConfigDump(urls, proxyID);
  if (output === 'json') { console.log(JSON.stringify(resourcesOf(dump, kind), null, 2)); return; }
  const flag = (n: string): string | undefined => { const v = args.flags.get(n); return typeof v === 'string' ? v : undefined; };
  console.log(formatProxyConfig(dump, kind, {
    fqdn: flag('fqdn'), port: flag('port'), subset: flag('subset'), direction: flag('direction'), cluster: flag('cluster'), name: flag('name'),
  }));
}
