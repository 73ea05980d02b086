import { writeFile, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { mustRun, runCommand } from './exec.js';
import { parseCidr, formatCidr, formatIpv4, cidrContains } from './cidr.js';
import { bridgeName, bridgeWildcard, chainName, chainPrefix, isPrefixLink, isPrefixNetns, validatePrefix } from './names.js';
import { ensureRule, purgeTablePrefix, restoreNoFlush } from './iptables.js';

export interface NodeNetworkOptions {
  prefix: string;
  nodePodCIDR: string; // e.g. 10.244.0.0/24, this node's share
  clusterPodCIDR: string; // e.g. 10.244.0.0/16
  serviceCIDR: string; // e.g. 10.96.0.0/16
  /** This node's bridge (default `<prefix>-br0`); several nodes each have their own. */
  bridge?: string;
  /**
   * Route the host's own connections to ClusterIPs over this bridge (default true). With
   * several nodes only one bridge carries that route.
   */
  serviceRoute?: boolean;
}

export interface NodeNetwork {
  bridge: string;
  gatewayIP: string;
  prefixLength: number;
}

/**
 * The unreachable routes carry a metric derived from the prefix: teardown finds them from
 * the routing table alone (no state file), so it also works after a crash.
 */
export function unreachableRouteMetric(prefix: string): number {
  const h = createHash('sha256').update(`trellis-route:${prefix}`).digest().readUInt32BE(0);
  return 3_000_000_000 + (h % 1_000_000_000);
}

async function linkExists(name: string): Promise<boolean> {
  return (await runCommand('ip', ['link', 'show', 'dev', name])).code === 0;
}

/**
 * Creates (or repairs) the node's pod network: bridge with the gateway address, the
 * unreachable safety routes, IP forwarding and FORWARD accept rules for the bridge.
 * Idempotent, so a restart after a crash converges instead of failing.
 */
export async function ensureNodeNetwork(opts: NodeNetworkOptions): Promise<NodeNetwork> {
  validatePrefix(opts.prefix);
  const node = parseCidr(opts.nodePodCIDR, 'nodePodCIDR');
  const cluster = parseCidr(opts.clusterPodCIDR, 'clusterPodCIDR');
  const service = parseCidr(opts.serviceCIDR, 'serviceCIDR');
  if (!cidrContains(cluster, node)) {
    throw new Error(`nodePodCIDR: ${formatCidr(node)} is not inside clusterPodCIDR ${formatCidr(cluster)}`);
  }
  if (node.prefixLength > 30) throw new Error(`nodePodCIDR: ${formatCidr(node)} is too small for a gateway and pods`);
  if (cidrContains(cluster, service) || cidrContains(service, cluster)) {
    throw new Error(`serviceCIDR: ${formatCidr(service)} overlaps clusterPodCIDR ${formatCidr(cluster)}`);
  }

  const bridge = opts.bridge ?? bridgeName(opts.prefix);
  if (!bridge.startsWith(`${opts.prefix}-br`)) throw new Error(`bridge: "${bridge}" does not carry the prefix "${opts.prefix}-br"`);
  const gatewayIP = formatIpv4(node.network + 1);
  const metric = String(unreachableRouteMetric(opts.prefix));

  // Safety first: nothing addressed to pods or services may follow the default route out.
  for (const cidr of [cluster, service]) {
    await mustRun('ip', ['route', 'replace', 'unreachable', formatCidr(cidr), 'metric', metric]);
  }

  if (!(await linkExists(bridge))) {
    const r = await runCommand('ip', ['link', 'add', 'name', bridge, 'type', 'bridge']);
    if (r.code !== 0 && !(await linkExists(bridge))) throw new Error(`bridge ${bridge}: ${r.stderr.trim()}`);
  }
  await mustRun('ip', ['addr', 'replace', `${gatewayIP}/${node.prefixLength}`, 'dev', bridge]);
  // A bridge left by a run with another node CIDR keeps its old address otherwise.
  const addrs = await mustRun('ip', ['-o', '-4', 'addr', 'show', 'dev', bridge]);
  for (const m of addrs.matchAll(/inet (\S+)/g)) {
    if (m[1] !== `${gatewayIP}/${node.prefixLength}`) await mustRun('ip', ['addr', 'delete', m[1], 'dev', bridge]);
  }
  await mustRun('ip', ['link', 'set', 'dev', bridge, 'up']);
  // The host's own connections to a ClusterIP are routed before nat OUTPUT can DNAT them;
  // with only the unreachable route, connect() would fail with EHOSTUNREACH. This route
  // (metric 0, so above the unreachable one) keeps them on the bridge, which only leads to
  // our own namespaces; it disappears with the bridge, leaving the unreachable route.
  if (opts.serviceRoute ?? true) {
    await mustRun('ip', ['route', 'replace', formatCidr(service), 'dev', bridge, 'src', gatewayIP, 'metric', '0']);
  }

  if ((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim() !== '1') {
    await writeFile('/proc/sys/net/ipv4/ip_forward', '1\n');
  }

  // Own chain, rewritten atomically, jumped to from FORWARD (whose policy may be DROP). The
  // rules name every node bridge of the prefix by wildcard, so they are the same for each
  // node and already cover a bridge before it exists: pod traffic is forwarded only from
  // one of our bridges to one of our bridges (same node or another), never elsewhere.
  const forward = chainName(opts.prefix, 'FORWARD');
  const bridges = bridgeWildcard(opts.prefix);
  await restoreNoFlush(
    [
      '*filter',
      `:${forward} - [0:0]`,
      `-A ${forward} -i ${bridges} ! -o ${bridges} -m comment --comment "${opts.prefix} pod traffic stays on the nodes' bridges" -j DROP`,
      `-A ${forward} -i ${bridges} -m comment --comment "${opts.prefix} pod to pod" -j ACCEPT`,
      `-A ${forward} -o ${bridges} -m comment --comment "${opts.prefix} to pods" -j ACCEPT`,
      'COMMIT',
      '',
    ].join('\n'),
  );
  await ensureRule('filter', 'FORWARD', ['-m', 'comment', '--comment', `${opts.prefix} node network`, '-j', forward]);

  return { bridge, gatewayIP, prefixLength: node.prefixLength };
}

function linkNames(output: string): string[] {
  // `ip -o link show` lines: "7: name@peer: <FLAGS> ..."
  const out: string[] = [];
  for (const line of output.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m) out.push(m[1]);
  }
  return out;
}

/**
 * Removes everything carrying the prefix: iptables chains and the jumps into them (filter
 * and nat), network namespaces and links `<prefix>-*` (bridges, leftover veths; never another
 * prefix's, such as `<prefix>1-*`)
 * and the unreachable routes. Needs only the prefix, so it cleans up a crashed run.
 * ip_forward is left on: other software on the host may rely on it.
 */
export async function teardownNodeNetwork(prefix: string): Promise<void> {
  validatePrefix(prefix);
  const errors: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      errors.push(`${what}: ${(err as Error).message}`);
    }
  };

  for (const table of ['nat', 'filter'] as const) {
    await attempt(`iptables ${table}`, () => purgeTablePrefix(table, chainPrefix(prefix)));
  }

  const netns = await runCommand('ip', ['netns', 'list']);
  for (const line of netns.stdout.split('\n')) {
    const name = line.split(' ')[0];
    if (isPrefixNetns(prefix, name)) await attempt(`netns ${name}`, () => mustRun('ip', ['netns', 'delete', name]));
  }

  const links = linkNames((await runCommand('ip', ['-o', 'link', 'show'])).stdout).filter((n) => isPrefixLink(prefix, n));
  for (const name of links) {
    // Deleting one end of a veth removes its peer too, so a later "cannot find" is fine.
    const r = await runCommand('ip', ['link', 'delete', 'dev', name]);
    if (r.code !== 0 && (await linkExists(name))) errors.push(`link ${name}: ${r.stderr.trim()}`);
  }

  const metric = String(unreachableRouteMetric(prefix));
  const routes = await runCommand('ip', ['-o', 'route', 'show', 'type', 'unreachable']);
  for (const line of routes.stdout.split('\n')) {
    const m = /^unreachable\s+(\S+).*\bmetric\s+(\d+)/.exec(line.trim());
    if (m && m[2] === metric) {
      await attempt(`route ${m[1]}`, () => mustRun('ip', ['route', 'delete', 'unreachable', m[1], 'metric', metric]));
    }
  }

  if (errors.length > 0) throw new Error(`teardown of network prefix "${prefix}" incomplete:\n${errors.join('\n')}`);
}
