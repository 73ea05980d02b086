// An ingress gateway added to the Bookinfo-like world: the gateway pod and its Service
// (port 80 -> targetPort 8080) in trellis-system, Gateways and VirtualServices bound to them.
import type { Gateway, GatewayServer, VirtualService } from '../../api/istio/index.js';
import type { Endpoints, Pod, Service } from '../../api/kube/index.js';
import type { ConfigInputs } from '../../pilot/model/inputs.js';
import { bookinfo, pod, service } from './fixtures.js';

export const GW_NS = 'trellis-system';
export const GW_IP = '10.244.0.90';
export const GW_NODE_ID = `router~${GW_IP}~istio-ingressgateway-xyz.${GW_NS}~${GW_NS}.svc.cluster.local`;

export function gatewayPod(labels: Record<string, string> = { istio: 'ingressgateway', app: 'istio-ingressgateway' }): Pod {
  const p = pod('istio-ingressgateway-xyz', GW_IP, labels, [{ name: 'http2', containerPort: 8080 }]);
  return { ...p, metadata: { ...p.metadata, namespace: GW_NS } };
}

export function gatewayService(port = 80, targetPort = 8080): Service {
  const s = service('istio-ingressgateway', '10.96.0.90', port, targetPort, { istio: 'ingressgateway' });
  return { ...s, metadata: { ...s.metadata, namespace: GW_NS }, spec: { ...s.spec, type: 'LoadBalancer', ports: [{ name: 'http2', port, targetPort, protocol: 'TCP' }] } };
}

export function gatewayEndpoints(): Endpoints {
  return {
    apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'istio-ingressgateway', namespace: GW_NS },
    subsets: [{ addresses: [{ ip: GW_IP, targetRef: { kind: 'Pod', name: 'istio-ingressgateway-xyz', namespace: GW_NS } }], ports: [{ name: 'http2', port: 8080, protocol: 'TCP' }] }],
  };
}

export function gateway(name: string, servers: GatewayServer[], namespace = 'default', selector: Record<string, string> = { istio: 'ingressgateway' }, created = '2025-01-01T00:00:00Z'): Gateway {
  return { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name, namespace, creationTimestamp: created }, spec: { selector, servers } };
}

export function httpServer(hosts: string[], number = 80): GatewayServer {
  return { port: { number, name: `http-${number}`, protocol: 'HTTP' }, hosts };
}

export function gatewayVs(name: string, hosts: string[], gateways: string[], http: VirtualService['spec']['http'], namespace = 'default', created = '2025-01-02T00:00:00Z'): VirtualService {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace, creationTimestamp: created }, spec: { hosts, gateways, http } };
}

/** Bookinfo plus the ingress gateway workload, with the given Gateways and extra VirtualServices. */
export function withGateway(gateways: Gateway[], vss: VirtualService[]): ConfigInputs {
  const inputs = bookinfo();
  inputs.virtualServices.push(...vss);
  inputs.namespaces.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: GW_NS } });
  inputs.pods.push(gatewayPod());
  inputs.services.push(gatewayService());
  inputs.endpoints.push(gatewayEndpoints());
  inputs.gateways = gateways;
  return inputs;
}
