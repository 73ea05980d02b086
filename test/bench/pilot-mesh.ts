// The pilot benchmark's mesh, as plain objects (the same inputs the informers would fill):
// M services spread over a few namespaces, each with a ClusterIP and one HTTP port, Endpoints
// with 2 pods (version v1 and v2), a DestinationRule with subsets v1/v2 for every 10th
// service and a VirtualService splitting it 80/20. Addresses are only config: nothing ever
// connects to them (the bench's traffic is ADS on 127.0.0.1).
import type { Endpoints, Namespace, Pod, Service } from '../../api/kube/index.js';
import type { DestinationRule, VirtualService } from '../../api/istio/index.js';
import type { ConfigInputs } from '../../pilot/model/inputs.js';

export const NAMESPACES = 10;
export const SERVICE_PORT = 8080;
export const DOMAIN = 'cluster.local';
/** The change: this service's VirtualService goes 80/20 -> 50/50 ... */
export const CHANGED_VS_SERVICE = 0;
/** ... and this service gains a third endpoint (a pod scaled up). */
export const CHANGED_EP_SERVICE = 1;

export interface BenchPod { name: string; namespace: string; ip: string; labels: Record<string, string> }

const nsOf = (i: number): string => `bench-${i % NAMESPACES}`;
export const serviceName = (i: number): string => `svc-${i}`;
export const fqdnOf = (i: number): string => `${serviceName(i)}.${nsOf(i)}.svc.${DOMAIN}`;
const podIp = (p: number): string => `10.244.${1 + (p >> 8)}.${p & 255}`;
const CREATED = '2025-01-01T00:00:00Z';

/** The pods of the mesh, in a fixed order (pod 2i and 2i+1 back service i). */
export function meshPods(m: number): BenchPod[] {
  const out: BenchPod[] = [];
  for (let i = 0; i < m; i++) {
    for (const [j, version] of ['v1', 'v2'].entries()) {
      out.push({ name: `${serviceName(i)}-${version}`, namespace: nsOf(i), ip: podIp(2 * i + j), labels: { app: serviceName(i), version } });
    }
  }
  return out;
}

function pod(p: BenchPod): Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: p.name, namespace: p.namespace, labels: p.labels, resourceVersion: '1' },
    spec: { containers: [{ name: 'app', image: 'trellis/sample-http:0.1.0', ports: [{ name: 'http', containerPort: SERVICE_PORT }] }] },
    status: { phase: 'Running', podIP: p.ip, podIPs: [{ ip: p.ip }] },
  };
}

function virtualService(i: number, w1: number, w2: number): VirtualService {
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'VirtualService',
    metadata: { name: serviceName(i), namespace: nsOf(i), creationTimestamp: CREATED },
    spec: {
      hosts: [serviceName(i)],
      http: [{ route: [
        { destination: { host: serviceName(i), subset: 'v1' }, weight: w1 },
        { destination: { host: serviceName(i), subset: 'v2' }, weight: w2 },
      ] }],
    },
  };
}

function destinationRule(i: number): DestinationRule {
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule',
    metadata: { name: serviceName(i), namespace: nsOf(i), creationTimestamp: CREATED },
    spec: { host: serviceName(i), subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
  };
}

/** The mesh's inputs; `changed` applies the bench's change (new weights, one more endpoint). */
export function meshInputs(m: number, changed = false): ConfigInputs {
  const pods = meshPods(m);
  const extra: BenchPod | undefined = changed
    ? { name: `${serviceName(CHANGED_EP_SERVICE)}-v1-b`, namespace: nsOf(CHANGED_EP_SERVICE), ip: podIp(2 * m + 1), labels: { app: serviceName(CHANGED_EP_SERVICE), version: 'v1' } }
    : undefined;
  const inputs: ConfigInputs = {
    namespaces: Array.from({ length: NAMESPACES }, (_, k): Namespace => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `bench-${k}` } })),
    services: [], endpoints: [], pods: [...pods, ...(extra ? [extra] : [])].map(pod), virtualServices: [], destinationRules: [],
  };
  for (let i = 0; i < m; i++) {
    const ns = nsOf(i);
    const svc: Service = {
      apiVersion: 'v1', kind: 'Service',
      metadata: { name: serviceName(i), namespace: ns },
      spec: { clusterIP: `10.96.${1 + (i >> 8)}.${i & 255}`, selector: { app: serviceName(i) }, ports: [{ name: 'http', port: SERVICE_PORT, targetPort: SERVICE_PORT, protocol: 'TCP' }] },
    };
    const backing = [pods[2 * i], pods[2 * i + 1], ...(extra && i === CHANGED_EP_SERVICE ? [extra] : [])];
    const ep: Endpoints = {
      apiVersion: 'v1', kind: 'Endpoints',
      metadata: { name: serviceName(i), namespace: ns },
      subsets: [{
        addresses: backing.map((p) => ({ ip: p.ip, targetRef: { kind: 'Pod', name: p.name, namespace: ns } })),
        ports: [{ name: 'http', port: SERVICE_PORT, protocol: 'TCP' }],
      }],
    };
    inputs.services.push(svc);
    inputs.endpoints.push(ep);
    if (i % 10 === 0) {
      inputs.destinationRules.push(destinationRule(i));
      inputs.virtualServices.push(changed && i === CHANGED_VS_SERVICE ? virtualService(i, 50, 50) : virtualService(i, 80, 20));
    }
  }
  return inputs;
}

/** Istio's node id for a pod's sidecar. */
export function nodeId(p: BenchPod): string {
  return `sidecar~${p.ip}~${p.name}.${p.namespace}~${p.namespace}.svc.${DOMAIN}`;
}
