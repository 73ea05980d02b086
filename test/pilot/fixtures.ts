// A small Bookinfo-like world: reviews (v1 and v2 pods, DestinationRule subsets, an 80/20
// VirtualService) and ratings on another port, as plain objects.
import type { Endpoints, KubeObject, Pod, Service } from '../../api/kube/index.js';
import type { DestinationRule, VirtualService } from '../../api/istio/index.js';
import type { ConfigInputs } from '../../pilot/model/inputs.js';

export const REVIEWS = 'reviews.default.svc.cluster.local';
export const RATINGS = 'ratings.default.svc.cluster.local';
export const V1_IP = '10.244.0.11';
export const V2_IP = '10.244.0.12';
export const RATINGS_IP = '10.244.0.21';
export const V1_NODE_ID = `sidecar~${V1_IP}~reviews-v1-abc.default~default.svc.cluster.local`;

export function pod(name: string, ip: string, labels: Record<string, string>, ports: { name: string; containerPort: number }[] = []): Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: 'default', labels, resourceVersion: '1' },
    spec: { containers: [{ name: 'app', image: 'trellis/sample-http:0.1.0', ports }] },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}

export function service(name: string, clusterIP: string, port: number, targetPort: number | string, selector: Record<string, string>): Service {
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: { clusterIP, selector, ports: [{ name: 'http', port, targetPort, protocol: 'TCP' }] },
  };
}

export function endpoints(name: string, port: number, addrs: { ip: string; pod: string }[]): Endpoints {
  return {
    apiVersion: 'v1', kind: 'Endpoints',
    metadata: { name, namespace: 'default' },
    subsets: [{
      addresses: addrs.map((a) => ({ ip: a.ip, targetRef: { kind: 'Pod', name: a.pod, namespace: 'default' } })),
      ports: [{ name: 'http', port, protocol: 'TCP' }],
    }],
  };
}

export function reviewsVs(w1: number, w2: number, subset2 = 'v2'): VirtualService {
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: 'default', creationTimestamp: '2025-01-01T00:00:00Z' },
    spec: {
      hosts: ['reviews'],
      http: [{ route: [
        { destination: { host: 'reviews', subset: 'v1' }, weight: w1 },
        { destination: { host: 'reviews', subset: subset2 }, weight: w2 },
      ] }],
    },
  };
}

export function reviewsDr(): DestinationRule {
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: 'default', creationTimestamp: '2025-01-01T00:00:00Z' },
    spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
  };
}

export function bookinfo(vs: VirtualService[] = [reviewsVs(80, 20)]): ConfigInputs {
  return {
    namespaces: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }],
    services: [
      service('reviews', '10.96.0.50', 9080, 'http', { app: 'reviews' }),
      service('ratings', '10.96.0.60', 8080, 8080, { app: 'ratings' }),
    ],
    endpoints: [
      endpoints('reviews', 9080, [{ ip: V1_IP, pod: 'reviews-v1-abc' }, { ip: V2_IP, pod: 'reviews-v2-def' }]),
      endpoints('ratings', 8080, [{ ip: RATINGS_IP, pod: 'ratings-v1-ghi' }]),
    ],
    pods: [
      pod('reviews-v1-abc', V1_IP, { app: 'reviews', version: 'v1' }, [{ name: 'http', containerPort: 9080 }]),
      pod('reviews-v2-def', V2_IP, { app: 'reviews', version: 'v2' }, [{ name: 'http', containerPort: 9080 }]),
      pod('ratings-v1-ghi', RATINGS_IP, { app: 'ratings', version: 'v1' }),
    ],
    virtualServices: vs,
    destinationRules: [reviewsDr()],
  };
}

/** The EndpointSlices the endpoint slice controller would write for an Endpoints fixture (all ready), one per subset. */
export function slicesFor(eps: Endpoints): KubeObject[] {
  return (eps.subsets ?? []).map((s, i) => ({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: `${eps.metadata.name}-${i}`, namespace: eps.metadata.namespace, labels: { 'kubernetes.io/service-name': eps.metadata.name ?? '' } },
    addressType: 'IPv4',
    endpoints: (s.addresses ?? []).map((a) => ({ addresses: [a.ip], conditions: { ready: true, serving: true, terminating: false }, targetRef: a.targetRef })),
    ports: s.ports ?? [],
  }) as KubeObject);
}
