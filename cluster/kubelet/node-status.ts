// The Node object: registered on start, its status (Ready, addresses, capacity, nodeInfo)
// refreshed with a heartbeat, as the kubelet's node status loop does.
import fs from 'node:fs';
import os from 'node:os';
import type { KubeClient, Node } from '../../api/kube/index.js';
import { R, isConflict, isNotFound } from '../../api/kube/index.js';
import { rfc3339 } from './process.js';

export const HEARTBEAT_MS = 10_000;
export const MAX_PODS = 110;
export const KUBELET_VERSION = 'v1.30.0-trellis';

export interface NodeIdentity { nodeName: string; gatewayIP: string; nodePodCIDR: string }

function readTrim(file: string): string {
  try { return fs.readFileSync(file, 'utf8').trim(); } catch { return ''; }
}

function osImage(): string {
  const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readTrim('/etc/os-release'));
  return m ? m[1] : 'Linux';
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };

function nodeStatus(id: NodeIdentity, previous: Node['status']): NonNullable<Node['status']> {
  const now = rfc3339(Date.now());
  const cpu = String(os.availableParallelism());
  const memory = `${Math.floor(os.totalmem() / 1024)}Ki`;
  const prevReady = previous?.conditions?.find((c) => c.type === 'Ready');
  const ready = {
    type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status',
    lastHeartbeatTime: now,
    lastTransitionTime: prevReady?.status === 'True' && prevReady.lastTransitionTime ? prevReady.lastTransitionTime : now,
  };
  const others = (previous?.conditions ?? []).filter((c) => c.type !== 'Ready');
  return {
    ...(previous ?? {}),
    capacity: { cpu, memory, pods: String(MAX_PODS) },
    allocatable: { cpu, memory, pods: String(MAX_PODS) },
    conditions: [...others, ready],
    addresses: [{ type: 'InternalIP', address: id.gatewayIP }, { type: 'Hostname', address: id.nodeName }],
    nodeInfo: {
      machineID: readTrim('/etc/machine-id'),
      systemUUID: readTrim('/sys/class/dmi/id/product_uuid'),
      bootID: readTrim('/proc/sys/kernel/random/boot_id'),
      kernelVersion: os.release(),
      osImage: osImage(),
      containerRuntimeVersion: 'trellis://0.1.0',
      kubeletVersion: KUBELET_VERSION,
      kubeProxyVersion: KUBELET_VERSION,
      operatingSystem: 'linux',
      architecture: ARCH[process.arch] ?? process.arch,
    },
  };
}

/** Creates the Node (or updates its spec.podCIDR) and posts a fresh status. */
export async function registerNode(client: KubeClient, id: NodeIdentity): Promise<void> {
  let node = await client.find<Node>(R.nodes, id.nodeName);
  if (!node) {
    try {
      node = await client.create<Node>(R.nodes, {
        metadata: {
          name: id.nodeName,
          labels: { 'kubernetes.io/hostname': id.nodeName, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': ARCH[process.arch] ?? process.arch },
        },
        spec: { podCIDR: id.nodePodCIDR, podCIDRs: [id.nodePodCIDR] },
      });
    } catch (e) {
      if (!isConflict(e)) throw e;
      node = await client.get<Node>(R.nodes, id.nodeName);
    }
  } else if (node.spec?.podCIDR !== id.nodePodCIDR) {
    node = await client.update<Node>(R.nodes, { ...node, spec: { ...(node.spec ?? {}), podCIDR: id.nodePodCIDR, podCIDRs: [id.nodePodCIDR] } });
  }
  await postNodeStatus(client, id, node);
}

/** PUT nodes/<name>/status; on a conflict, re-reads the node and tries again. */
export async function postNodeStatus(client: KubeClient, id: NodeIdentity, current?: Node): Promise<void> {
  let node = current ?? await client.get<Node>(R.nodes, id.nodeName);
  for (let attempt = 0; ; attempt++) {
    try {
      await client.updateStatus<Node>(R.nodes, { ...node, status: nodeStatus(id, node.status) });
      return;
    } catch (e) {
      if (isNotFound(e)) { await registerNode(client, id); return; }
      if (!isConflict(e) || attempt >= 3) throw e;
      node = await client.get<Node>(R.nodes, id.nodeName);
    }
  }
}

export class NodeHeartbeat {
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly client: KubeClient, private readonly id: NodeIdentity) {}

  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      postNodeStatus(this.client, this.id)
        .catch((e: unknown) => console.error(`kubelet: node ${this.id.nodeName} heartbeat: ${(e as Error).message}`))
        .finally(() => { if (!this.stopped) this.timer = setTimeout(tick, HEARTBEAT_MS); });
    };
    this.timer = setTimeout(tick, HEARTBEAT_MS);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
