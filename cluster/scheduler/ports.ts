// NodePorts filter: a container port with a hostPort takes that port (per protocol and host
// IP) on the node; a second pod asking for it does not fit there. 0.0.0.0 (or no hostIP)
// conflicts with every address.
import type { Pod } from '../../api/kube/index.js';

export const PORTS_REASON = "node(s) didn't have free ports for the requested pod ports";

interface HostPort { ip: string; protocol: string; port: number }

/** The host ports a pod takes (app, init and sidecar containers). */
export function hostPortsOf(pod: Pod): HostPort[] {
  const out: HostPort[] = [];
  for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
    for (const p of (c as { ports?: { hostPort?: number; hostIP?: string; protocol?: string }[] }).ports ?? []) {
      if (!p.hostPort) continue;
      out.push({ ip: p.hostIP || '0.0.0.0', protocol: p.protocol ?? 'TCP', port: p.hostPort });
    }
  }
  return out;
}

function conflict(a: HostPort, b: HostPort): boolean {
  if (a.port !== b.port || a.protocol !== b.protocol) return false;
  return a.ip === b.ip || a.ip === '0.0.0.0' || b.ip === '0.0.0.0';
}

/** Why the pod's host ports do not fit next to the node's pods, or undefined. */
export function checkNodePorts(pod: Pod, podsOnNode: readonly Pod[]): string | undefined {
  const wanted = hostPortsOf(pod);
  if (!wanted.length) return undefined;
  for (const other of podsOnNode) {
    const taken = hostPortsOf(other);
    if (wanted.some((w) => taken.some((t) => conflict(w, t)))) return PORTS_REASON;
  }
  return undefined;
}
