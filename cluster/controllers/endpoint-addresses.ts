// What a Service's endpoints are, as pure functions of the Service and its pods: the pods
// that back it, their ports resolved from targetPort (a number, or a named container port
// looked up per pod), grouped by identical port sets. Shared by the Endpoints and
// EndpointSlice writers so both tell the same story.
import type { EndpointAddress, EndpointPort, Pod, Service } from '../../api/kube/index.js';
import { isPodReady } from './pod-util.js';

export interface PodEndpoint {
  pod: Pod;
  ip: string;
  address: EndpointAddress;
  ready: boolean;
  /** Ready ignoring termination (EndpointSlice `serving`). */
  serving: boolean;
  terminating: boolean;
}

export interface EndpointGroup {
  ports: EndpointPort[];
  endpoints: PodEndpoint[];
}

/** Resolves a service port's targetPort against one pod; undefined if the pod lacks the named port. */
export function resolveTargetPort(pod: Pod, port: { port: number; targetPort?: number | string; protocol?: string }): number | undefined {
  const tp = port.targetPort ?? port.port;
  if (typeof tp === 'number') return tp;
  if (/^\d+$/.test(tp)) return Number(tp);
  const proto = port.protocol ?? 'TCP';
  for (const c of pod.spec.containers ?? []) {
    for (const cp of c.ports ?? []) {
      if (cp.name === tp && (cp.protocol ?? 'TCP') === proto) return cp.containerPort;
    }
  }
  return undefined;
}

function podIP(pod: Pod): string | undefined {
  return pod.status?.podIP ?? pod.status?.podIPs?.[0]?.ip;
}

/** Pods a Service's endpoints include: running or pending with an IP, not finished. */
function backsService(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return !!podIP(pod) && phase !== 'Succeeded' && phase !== 'Failed';
}

export function endpointGroups(svc: Service, pods: Pod[]): EndpointGroup[] {
  const publishNotReady = (svc.spec as { publishNotReadyAddresses?: boolean }).publishNotReadyAddresses === true;
  const groups = new Map<string, EndpointGroup>();
  for (const pod of pods) {
    if (!backsService(pod)) continue;
    const ports: EndpointPort[] = [];
    for (const sp of svc.spec.ports ?? []) {
      const port = resolveTargetPort(pod, sp);
      if (port === undefined) continue;
      const ep: EndpointPort = { port, protocol: sp.protocol ?? 'TCP' };
      if (sp.name) ep.name = sp.name;
      if (sp.appProtocol) ep.appProtocol = sp.appProtocol;
      ports.push(ep);
    }
    // A pod resolving none of the service's ports backs nothing (unless the service has none).
    if ((svc.spec.ports?.length ?? 0) > 0 && ports.length === 0) continue;
    ports.sort((a, b) => (a.name ?? '').localeCompare(b.name ?? '') || a.port - b.port);
    const terminating = !!pod.metadata.deletionTimestamp;
    const serving = publishNotReady || isPodReady(pod);
    const address: EndpointAddress = {
      ip: podIP(pod) as string,
      targetRef: { kind: 'Pod', namespace: pod.metadata.namespace, name: pod.metadata.name as string, uid: pod.metadata.uid },
    };
    if (pod.spec.nodeName) address.nodeName = pod.spec.nodeName;
    // A pod whose subdomain names this Service gets a DNS name <hostname>.<svc>.<ns>.svc
    // (StatefulSet pods behind their headless Service).
    const { hostname, subdomain } = pod.spec as { hostname?: string; subdomain?: string };
    if (hostname && subdomain === svc.metadata.name && pod.metadata.namespace === svc.metadata.namespace) address.hostname = hostname;
    const key = JSON.stringify(ports);
    let g = groups.get(key);
    if (!g) { g = { ports, endpoints: [] }; groups.set(key, g); }
    g.endpoints.push({ pod, ip: address.ip, address, ready: serving && !terminating, serving, terminating });
  }
  const out = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, g]) => g);
  for (const g of out) g.endpoints.sort((a, b) => a.ip.localeCompare(b.ip) || (a.address.targetRef?.name ?? '').localeCompare(b.address.targetRef?.name ?? ''));
  return out;
}
