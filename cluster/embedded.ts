// The embedded one-node cluster: store, API server, controllers, scheduler, service
// networking, DNS and a kubelet, started in this order and stopped in reverse. Generic
// Kubernetes: nothing here knows about the mesh.
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
  log?: (line: string) => void;
}

export interface EmbeddedCluster {
  apiURL: string;
  kubeconfigPath: string;
  nodeName: string;
  stop(): Promise<void>;
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
    await purgeCluster(opts.name);
    const pod = parseCidr(opts.podCIDR, '--pod-cidr');
    const svc = parseCidr(opts.serviceCIDR, '--service-cidr');
    const nodePodCIDR = `${formatIpv4(pod.network)}/24`;
    const dnsIP = formatIpv4(svc.network + 10);
    stoppers.push(() => teardownNodeNetwork(opts.name));
    const net = await ensureNodeNetwork({ prefix: opts.name, nodePodCIDR, clusterPodCIDR: opts.podCIDR, serviceCIDR: opts.serviceCIDR });
    log(`node network: bridge ${net.bridge} ${net.gatewayIP}/${net.prefixLength}, unreachable routes for ${opts.podCIDR} and ${opts.serviceCIDR}`);

    let kubeletRef: Kubelet | undefined;
    const store = new FileStore(path.join(opts.dataDir, 'store'));
    stoppers.push(() => store.close());
    const api = await startApiServer({
      store,
      listen: [{ host: '127.0.0.1', port: opts.apiPort }, { host: net.gatewayIP, port: opts.apiPort }],
      dataDir: opts.dataDir,
      serviceCIDR: opts.serviceCIDR,
      clusterName: opts.name,
      podLogs: podLogHandler(() => kubeletRef),
    });
    stoppers.push(() => api.close());
    const kubeconfigPath = path.join(opts.dataDir, 'kubeconfig');
    const client = KubeClient.fromKubeconfig(kubeconfigPath, 'trellis-controller-manager');
    stoppers.push(() => client.close());

    const controllers = await startControllers({ client, rootCAPem: api.caCertPem });
    stoppers.push(() => controllers.stop());
    const scheduler = await startScheduler({ client });
    stoppers.push(() => scheduler.stop());

    const dns: ClusterDNS = await startClusterDNS({ listen: [{ host: net.gatewayIP, port: 53 }], domain });
    stoppers.push(() => dns.close());
    const proxy: ServiceProxy = startServiceProxy({ prefix: opts.name, dns: { serviceIP: dnsIP, targetIP: net.gatewayIP, port: 53 } });
    const networking: NetworkControllers = runNetworkControllers(client, { proxy, dns });
    stoppers.push(() => networking.stop());
    await networking.ready;

    const nodeName = os.hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '-') || `${opts.name}-node`;
    const kubelet = await startKubelet({
      client, nodeName, prefix: opts.name, bridge: net.bridge, gatewayIP: net.gatewayIP, nodePodCIDR,
      imageCatalogs: opts.imageCatalogs, dataDir: path.join(opts.dataDir, 'kubelet'), clusterDNS: dnsIP, clusterDomain: domain,
    });
    kubeletRef = kubelet.kubelet;
    stoppers.push(() => kubelet.stop());
    log(`node ${nodeName} ready; pods get addresses from ${nodePodCIDR}`);
    return { apiURL: api.url, kubeconfigPath, nodeName, stop };
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
    if (!ns || !ns.startsWith(`${prefix}-`)) continue;
    const pids = await run('ip', ['netns', 'pids', ns]).then((r) => r.stdout.split('\n').filter(Boolean).map(Number)).catch(() => [] as number[]);
    for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }
  await teardownNodeNetwork(prefix);
  await removePodCgroups(prefix);
}
