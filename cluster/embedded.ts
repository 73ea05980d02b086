// The embedded cluster: store, API server, controllers, scheduler, service networking, DNS
// and one kubelet per node, started in this order and stopped in reverse. Generic
// Kubernetes: nothing here knows about the mesh.
//
// Several nodes share the machine: node i has its own bridge `<prefix>-br<i>` and the i-th
// /24 of the pod CIDR (its Node spec.podCIDR). The root namespace holds each bridge's
// connected /24 route, so it routes between the nodes' pods; the FORWARD chain lets pod
// traffic pass only from one of our bridges to another. The service proxy (iptables in the
// root namespace) and the cluster DNS serve every node, as kube-proxy on each node would.
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { KubeClient } from '../api/kube/index.js';
import { startApiServer } from './apiserver/server.js';
import { startControllers } from './controllers/index.js';
import { removePodCgroups, startKubelet, type Kubelet } from './kubelet/index.js';
import { podLogHandler } from './kubelet/log-handler.js';
import { startClusterDNS, type ClusterDNS } from './network/dns.js';
import { runNetworkControllers, type NetworkControllers } from './network/informer-adapter.js';
import { ensureNodeNetwork, teardownNodeNetwork } from './network/node-network.js';
import { startServiceProxy, type ServiceProxy } from './network/service-proxy.js';
import { parseCidr, formatIpv4 } from './network/cidr.js';
import { MAX_NODES, isPrefixNetns, nodeBridgeName, nodePrefix, validatePrefix } from './network/names.js';
import { startScheduler } from './scheduler/index.js';
import { FileStore } from './store/index.js';

const run = promisify(execFile);

export interface EmbeddedClusterOptions {
  /** Prefix of every network object (netns, links, chains); also the node name's stem. */
  name: string;
  dataDir: string;
  apiPort: number;
  podCIDR: string; // the cluster's; the node takes its first /24
  serviceCIDR: string;
  imageCatalogs: string[];
  clusterDomain?: string;
  /** Number of nodes (default 1), each with its own kubelet, bridge and /24; at most MAX_NODES. */
  nodes?: number;
  /** Event lifetime after its last write (kube-apiserver --event-ttl); default 1 h. */
  eventTTLSeconds?: number;
  log?: (line: string) => void;
}

export interface EmbeddedCluster {
  apiURL: string;
  kubeconfigPath: string;
  /** The first node's name. */
  nodeName: string;
  nodes: NodePlan[];
  stop(): Promise<void>;
}

export interface NodePlan {
  name: string;
  bridge: string;
  podCIDR: string;
  gatewayIP: string;
  /** Names this node's sandboxes, cgroup slice and kubelet data. */
  kubeletPrefix: string;
  dataDir: string;
}

/**
 * Where each node lives. One node keeps the single-node names (the host name, `<prefix>-br0`,
 * sandboxes `<prefix>-*`); several are node-0..N-1 with kubelet prefixes `<prefix><i>`.
 */
export function planNodes(prefix: string, podCIDR: string, count: number, dataDir: string): NodePlan[] {
  validatePrefix(prefix);
  if (!Number.isInteger(count) || count < 1 || count > MAX_NODES) throw new Error(`nodes: ${count} must be an integer from 1 to ${MAX_NODES}`);
  const pod = parseCidr(podCIDR, '--pod-cidr');
  if (pod.prefixLength > 24 || 2 ** (24 - pod.prefixLength) < count) {
    throw new Error(`--pod-cidr: ${podCIDR} has no room for ${count} node /24s`);
  }
  const plans: NodePlan[] = [];
  for (let i = 0; i < count; i++) {
    const net = pod.network + i * 256;
    const single = count === 1;
    plans.push({
      name: single ? (os.hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '-') || `${prefix}-node`) : `node-${i}`,
      bridge: nodeBridgeName(prefix, i),
      podCIDR: `${formatIpv4(net)}/24`,
      gatewayIP: formatIpv4(net + 1),
      kubeletPrefix: single ? prefix : nodePrefix(prefix, i),
      dataDir: single ? path.join(dataDir, 'kubelet') : path.join(dataDir, 'kubelet', `node-${i}`),
    });
  }
  return plans;
}

type Stopper = () => Promise<void> | void;

export async function startEmbeddedCluster(opts: EmbeddedClusterOptions): Promise<EmbeddedCluster> {
  const log = opts.log ?? (() => {});
  const domain = opts.clusterDomain ?? 'cluster.local';
  const stoppers: Stopper[] = [];
  const stop = async (): Promise<void> => {
    for (const s of stoppers.reverse()) {
      try { await s(); } catch (e) { console.error(`[trellis] stop: ${(e as Error).message}`); }
    }
    stoppers.length = 0;
  };
  try {
    // A crashed earlier run may have left objects with our prefix: clear them first.
    const plans = planNodes(opts.name, opts.podCIDR, opts.nodes ?? 1, opts.dataDir);
    await purgeCluster(opts.name);
    const svc = parseCidr(opts.serviceCIDR, '--service-cidr');
    const dnsIP = formatIpv4(svc.network + 10);
    stoppers.push(() => teardownNodeNetwork(opts.name));
    for (const [i, plan] of plans.entries()) {
      const n = await ensureNodeNetwork({
        prefix: opts.name, nodePodCIDR: plan.podCIDR, clusterPodCIDR: opts.podCIDR, serviceCIDR: opts.serviceCIDR,
        bridge: plan.bridge, serviceRoute: i === 0,
      });
      log(`node network ${plan.name}: bridge ${n.bridge} ${n.gatewayIP}/${n.prefixLength}, unreachable routes for ${opts.podCIDR} and ${opts.serviceCIDR}`);
    }
    // The control plane (API server, DNS) listens on the first node's gateway; every node's
    // pods reach it through the root namespace.
    const net = { bridge: plans[0].bridge, gatewayIP: plans[0].gatewayIP };

    const kubelets: Kubelet[] = [];
    const store = new FileStore(path.join(opts.dataDir, 'store'));
    stoppers.push(() => store.close());
    const api = await startApiServer({
      store,
      listen: [{ host: '127.0.0.1', port: opts.apiPort }, { host: net.gatewayIP, port: opts.apiPort }],
      dataDir: opts.dataDir,
      serviceCIDR: opts.serviceCIDR,
      clusterName: opts.name,
      podLogs: podLogHandler(() => kubelets),
      eventTTLSeconds: opts.eventTTLSeconds,
    });
    stoppers.push(() => api.close());
    const kubeconfigPath = path.join(opts.dataDir, 'kubeconfig');
    const client = KubeClient.fromKubeconfig(kubeconfigPath, 'trellis-controller-manager');
    stoppers.push(() => client.close());

    const controllers = await startControllers({ client, rootCAPem: api.caCertPem, legacyTokenIssuer: api.issueLegacyServiceAccountToken });
    stoppers.push(() => controllers.stop());
    const scheduler = await startScheduler({ client });
    stoppers.push(() => scheduler.stop());

    const dns: ClusterDNS = await startClusterDNS({ listen: [{ host: net.gatewayIP, port: 53 }], domain });
    stoppers.push(() => dns.close());
    const proxy: ServiceProxy = startServiceProxy({
      prefix: opts.name, dns: { serviceIP: dnsIP, targetIP: net.gatewayIP, port: 53 }, bridges: plans.map((p) => p.bridge),
    });
    const networking: NetworkControllers = runNetworkControllers(client, { proxy, dns });
    stoppers.push(() => networking.stop());
    await networking.ready;

    for (const plan of plans) {
      const kubelet = await startKubelet({
        client, nodeName: plan.name, prefix: plan.kubeletPrefix, bridge: plan.bridge, gatewayIP: plan.gatewayIP, nodePodCIDR: plan.podCIDR,
        imageCatalogs: opts.imageCatalogs, dataDir: plan.dataDir, clusterDNS: dnsIP, clusterDomain: domain,
      });
      kubelets.push(kubelet.kubelet);
      stoppers.push(() => kubelet.stop());
      log(`node ${plan.name} ready; pods get addresses from ${plan.podCIDR}`);
    }
    return { apiURL: api.url, kubeconfigPath, nodeName: plans[0].name, nodes: plans, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * Removes every network object with the prefix, also after a crash: processes still in
 * its network namespaces (started by an earlier run of ours) are killed first.
 */
export async function purgeCluster(prefix: string): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list']).catch(() => ({ stdout: '' }));
  for (const line of stdout.split('\n')) {
    const ns = line.split(' ')[0];
    if (!ns || !isPrefixNetns(prefix, ns)) continue;
    const pids = await run('ip', ['netns', 'pids', ns]).then((r) => r.stdout.split('\n').filter(Boolean).map(Number)).catch(() => [] as number[]);
    for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }
  await teardownNodeNetwork(prefix);
  await removePodCgroups(prefix);
  for (let i = 0; i < MAX_NODES; i++) await removePodCgroups(nodePrefix(prefix, i));
}
