import { parseIpv4 } from './cidr.js';
import { chainName, chainPrefix, shortHash } from './names.js';
import { type Collection, type Endpoints, type Service, isHeadless, objectKey, protocolOf, readyEndpointsFor, toList } from './kube-types.js';

/** Mark bit for "masquerade this connection" (the same bit kube-proxy uses). */
export const MASQ_MARK = '0x4000';

export interface DnsRedirect {
  serviceIP: string; // e.g. 10.96.0.10
  targetIP: string; // the bridge gateway IP where the cluster DNS listens
  port?: number; // 53
}

export interface ServiceRulesInput {
  prefix: string;
  services: Collection<Service>;
  endpoints: Collection<Endpoints>;
  dns?: DnsRedirect;
  /**
   * The node bridge. Node ports on 127.0.0.1 need route_localnet on it (see ServiceProxy);
   * filter <P>-LOCALNET then drops anything arriving on it for 127.0.0.0/8 that is not the
   * reply of a connection we DNAT'd (kube-proxy's guard against CVE-2020-8558).
   */
  bridge?: string;
  /** Several node bridges (a cluster of several nodes); each gets the guard. */
  bridges?: readonly string[];
  /** nat chains of the prefix that exist now; SVC/SEP chains no longer wanted are deleted. */
  existingNatChains?: readonly string[];
}

/** Chain name -> its rules (`-A <chain> ...` lines, in order), in the order chains are declared. */
export type ChainRules = ReadonlyMap<string, readonly string[]>;

/** The proxy's chains per table: what it wants in the kernel, or what it last wrote there. */
export interface Ruleset {
  nat: ChainRules;
  filter: ChainRules;
}

export interface ServiceRules {
  /** Input for `iptables-restore --noflush`, covering nat and filter (every chain written in full). */
  restore: string;
  /** The same rules per table and chain, for incremental syncs (see service-delta.ts). */
  tables: Ruleset;
  /** The same rules without stale-chain deletion, to detect "nothing changed". */
  fingerprint: string;
  /** Service ports skipped, with the reason (invalid address, unsupported protocol...). */
  skipped: string[];
}

const PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);

/** Kubernetes' default for sessionAffinityConfig.clientIP.timeoutSeconds (3 hours); the API caps it at a day. */
export const DEFAULT_AFFINITY_SECONDS = 10800;
const MAX_AFFINITY_SECONDS = 86400;

/** The ClientIP affinity timeout of a service, or undefined when it has no affinity. */
export function affinitySeconds(svc: Service): number | undefined {
  if (svc.spec?.sessionAffinity !== 'ClientIP') return undefined;
  const t = svc.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  return typeof t === 'number' && Number.isInteger(t) && t > 0 && t <= MAX_AFFINITY_SECONDS ? t : DEFAULT_AFFINITY_SECONDS;
}

/** NodePort and LoadBalancer services are also reachable on the node's own addresses. */
function hasNodePorts(svc: Service): boolean {
  return svc.spec?.type === 'NodePort' || svc.spec?.type === 'LoadBalancer';
}

function comment(text: string): string {
  // Names come from API objects: keep the restore file line-safe and quote-safe.
  return `"${text.replace(/[^A-Za-z0-9._:/-]/g, '_')}"`;
}

function validPort(p: unknown): p is number {
  return typeof p === 'number' && Number.isInteger(p) && p > 0 && p < 65536;
}

/**
 * Pure generator of the service proxy's ruleset (kube-proxy iptables mode):
 * nat <P>-SERVICES matches clusterIP:port/proto and jumps to <P>-SVC-<hash>, which picks an
 * endpoint chain <P>-SEP-<hash> with `statistic --mode random` (probability 1/(n-i) for
 * the i-th, so all are equally likely); the SEP chain marks for masquerade and DNATs.
 * filter <P>-SERVICES rejects service ports that have no ready endpoint.
 * NodePort (and LoadBalancer) ports: <P>-NODEPORTS matches the node port and jumps to the
 * same SVC chain; it is entered last from <P>-SERVICES, only for connections the host itself
 * opens to one of its own addresses (127.0.0.1 included), never for traffic arriving from
 * other machines (network-safety rule: pods are not exposed outside this host).
 * ClientIP session affinity: the `recent` module, as kube-proxy does: each SEP chain records
 * the client address in a list named after the chain (--set), and the SVC chain first sends
 * a client seen within timeoutSeconds back to the endpoint whose list holds it (--rcheck).
 */
export function buildServiceRules(input: ServiceRulesInput): ServiceRules {
  const P = (s: string) => chainName(input.prefix, s);
  const services = P('SERVICES');
  const markMasq = P('MARK-MASQ');
  const postrouting = P('POSTROUTING');
  const nodePorts = P('NODEPORTS');
  const skipped: string[] = [];

  const natChains: string[] = [services, markMasq, postrouting, nodePorts];
  const nodePortRules: string[] = [];
  const natRules: string[] = [
    `-A ${markMasq} -j MARK --or-mark ${MASQ_MARK}`,
    `-A ${postrouting} -m mark ! --mark ${MASQ_MARK}/${MASQ_MARK} -j RETURN`,
    // Clear the bit so a packet that crosses the stack twice is not masqueraded twice.
    `-A ${postrouting} -j MARK --xor-mark ${MASQ_MARK}`,
    `-A ${postrouting} -m comment --comment ${comment(`${input.prefix} service traffic requiring SNAT`)} -j MASQUERADE`,
  ];
  const svcRules: string[] = [];
  const filterRules: string[] = [];

  const dnsPort = input.dns?.port ?? 53;
  if (input.dns) {
    if (parseIpv4(input.dns.serviceIP) === undefined) throw new Error(`dns.serviceIP: "${input.dns.serviceIP}" is not an IPv4 address`);
    if (parseIpv4(input.dns.targetIP) === undefined) throw new Error(`dns.targetIP: "${input.dns.targetIP}" is not an IPv4 address`);
    for (const proto of ['udp', 'tcp']) {
      svcRules.push(
        `-A ${services} -d ${input.dns.serviceIP}/32 -p ${proto} -m ${proto} --dport ${dnsPort} ` +
          `-m comment --comment ${comment('cluster dns')} -j DNAT --to-destination ${input.dns.targetIP}:${dnsPort}`,
      );
    }
  }

  const endpointsByKey = new Map<string, Endpoints>();
  for (const ep of toList(input.endpoints)) endpointsByKey.set(objectKey(ep.metadata), ep);

  const sorted = toList(input.services).sort((a, b) => objectKey(a.metadata).localeCompare(objectKey(b.metadata)));
  for (const svc of sorted) {
    const key = objectKey(svc.metadata);
    const spec = svc.spec ?? {};
    if (isHeadless(svc) || spec.type === 'ExternalName' || !spec.clusterIP) continue;
    const clusterIP = spec.clusterIP;
    if (parseIpv4(clusterIP) === undefined) {
      skipped.push(`service ${key}: spec.clusterIP "${clusterIP}" is not an IPv4 address`);
      continue;
    }
    (spec.ports ?? []).forEach((port, i) => {
      const portName = port.name ?? '';
      const proto = protocolOf(port);
      const where = `service ${key}: spec.ports[${i}]`;
      if (!PROTOCOLS.has(proto)) return skipped.push(`${where}.protocol "${proto}" is not supported`);
      if (!validPort(port.port)) return skipped.push(`${where}.port ${String(port.port)} is not a valid port`);
      if (input.dns && clusterIP === input.dns.serviceIP && port.port === dnsPort) return; // served by the built-in DNS redirect
      const p = proto.toLowerCase();
      const svcPortName = `${key}:${portName}`;
      const match = `-d ${clusterIP}/32 -p ${p} -m ${p} --dport ${port.port}`;
      const eps = readyEndpointsFor(endpointsByKey.get(key), portName, proto).filter(
        (e) => parseIpv4(e.ip) !== undefined && validPort(e.port),
      );
      if (eps.length === 0) {
        filterRules.push(
          `-A ${services} ${match} -m comment --comment ${comment(`${svcPortName} has no endpoints`)} ` +
            `-j REJECT --reject-with ${p === 'tcp' ? 'tcp-reset' : 'icmp-port-unreachable'}`,
        );
        return;
      }
      const svcChain = P(`SVC-${shortHash(`${svcPortName}/${proto}`)}`);
      natChains.push(svcChain);
      svcRules.push(`-A ${services} ${match} -m comment --comment ${comment(`${svcPortName} cluster IP`)} -j ${svcChain}`);
      if (hasNodePorts(svc)) {
        if (validPort(port.nodePort)) {
          nodePortRules.push(`-A ${nodePorts} -p ${p} -m ${p} --dport ${port.nodePort} -m comment --comment ${comment(`${svcPortName} node port`)} -j ${svcChain}`);
        } else if (port.nodePort !== undefined) {
          skipped.push(`${where}.nodePort ${String(port.nodePort)} is not a valid port`);
        }
      }
      const affinity = affinitySeconds(svc);
      eps.sort((a, b) => `${a.ip}:${a.port}`.localeCompare(`${b.ip}:${b.port}`));
      const sepChains = eps.map((ep) => P(`SEP-${shortHash(`${svcPortName}/${proto}/${ep.ip}:${ep.port}`)}`));
      // The list name is the SEP chain's: unique per endpoint and carrying the prefix.
      const recent = (sep: string, op: string): string => `-m recent ${op} --name ${sep} --mask 255.255.255.255 --rsource`;
      if (affinity !== undefined) {
        eps.forEach((ep, j) => {
          natRules.push(`-A ${svcChain} -m comment --comment ${comment(`${svcPortName} -> ${ep.ip}:${ep.port} affinity`)} ${recent(sepChains[j], `--rcheck --seconds ${affinity} --reap`)} -j ${sepChains[j]}`);
        });
      }
      eps.forEach((ep, j) => {
        const sepChain = sepChains[j];
        natChains.push(sepChain);
        const n = eps.length - j;
        const pick = n > 1 ? `-m statistic --mode random --probability ${(1 / n).toFixed(10)} ` : '';
        natRules.push(`-A ${svcChain} -m comment --comment ${comment(`${svcPortName} -> ${ep.ip}:${ep.port}`)} ${pick}-j ${sepChain}`);
        // Masquerade all service traffic: a pod on the same bridge (or the pod itself,
        // hairpin) would otherwise answer the client directly, bypassing the un-DNAT.
        natRules.push(`-A ${sepChain} -j ${markMasq}`);
        const remember = affinity !== undefined ? `${recent(sepChain, '--set')} ` : '';
        natRules.push(`-A ${sepChain} -p ${p} ${remember}-m ${p} -j DNAT --to-destination ${ep.ip}:${ep.port}`);
      });
    });
  }

  // Last in SERVICES (cluster IPs match first), as kube-proxy orders KUBE-NODEPORTS.
  if (nodePortRules.length > 0) {
    svcRules.push(
      `-A ${services} -m addrtype --src-type LOCAL --dst-type LOCAL -m comment --comment ${comment('node ports, from this host only')} -j ${nodePorts}`,
    );
  }
  natRules.push(...nodePortRules);

  const ownedPattern = new RegExp(`^${chainPrefix(input.prefix)}(SVC|SEP)-`);
  const wanted = new Set(natChains);
  const stale = (input.existingNatChains ?? []).filter((c) => ownedPattern.test(c) && !wanted.has(c)).sort();

  const declare = (chains: readonly string[]) => chains.map((c) => `:${c} - [0:0]`);
  const filterChains = [services];
  const guarded = [...(input.bridge ? [input.bridge] : []), ...(input.bridges ?? [])];
  if (guarded.length > 0) {
    const localnet = P('LOCALNET');
    filterChains.push(localnet);
    for (const bridge of guarded) {
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw new Error(`bridge: "${bridge}" is not a valid interface name`);
      filterRules.push(
        `-A ${localnet} -i ${bridge} -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT ` +
          `-m comment --comment ${comment('block localnet from pods')} -j DROP`,
      );
    }
  }
  const filter = ['*filter', ...declare(filterChains), ...filterRules, 'COMMIT'];
  const fingerprint = ['*nat', ...declare(natChains), ...svcRules, ...natRules, 'COMMIT', ...filter, ''].join('\n');
  // Stale chains are declared (which flushes them), and deleted at the end, once the new
  // SERVICES chain no longer jumps to them; all in one atomic transaction.
  const restore = [
    '*nat',
    ...declare(natChains),
    ...declare(stale),
    ...svcRules,
    ...natRules,
    ...stale.map((c) => `-X ${c}`),
    'COMMIT',
    ...filter,
    '',
  ].join('\n');
  const tables: Ruleset = {
    nat: groupByChain(natChains, [...svcRules, ...natRules]),
    filter: groupByChain(filterChains, filterRules),
  };
  return { restore, fingerprint, skipped, tables };
}

/** Groups `-A <chain> ...` lines by chain, keeping the order of chains and of rules in each. */
function groupByChain(chains: readonly string[], lines: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>(chains.map((c) => [c, []]));
  for (const line of lines) {
    const chain = line.split(' ', 2)[1];
    const rules = out.get(chain);
    if (!rules) throw new Error(`service rules: rule for undeclared chain ${chain}`);
    rules.push(line);
  }
  return out;
}
