// The outbound side of the contract: automatic mTLS (every outbound cluster offers Istio mTLS
// to endpoints labelled `security.istio.io/tlsMode: istio`, plaintext to the others) and the
// DestinationRule tls modes, which replace it (Istio's buildAutoMtlsSettings: DISABLE and
// SIMPLE turn auto mTLS off for that destination, ISTIO_MUTUAL always uses mesh mTLS).
import type { PushContext } from '../model/push-context.js';
import type { EndpointModel } from '../model/service.js';
import { parseOutboundClusterName } from '../xds/generators/names.js';
import { clusterTrafficPolicy } from '../xds/generators/traffic-policy.js';
import type { Cluster, LbEndpoint } from '../xds/generators/envoy.js';
import { workloadMtls } from './peer-authentication.js';
import { RAW_BUFFER_SOCKET, istioSni, upstreamFileTls, upstreamIstioMtls } from './tls-context.js';

export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';
export const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';

// match and filterMetadata are google.protobuf.Struct, written in its message form
// (`{ fields: { k: { stringValue } } }`) because packAny encodes with protobufjs, which has
// no JSON mapping for Struct: `{ tlsMode: 'istio' }` would silently encode as `{}`.
const ISTIO_TLS_MODE = { fields: { tlsMode: { stringValue: 'istio' } } };

const sansCache = new WeakMap<PushContext, Map<string, string[]>>();

/** The SPIFFE identities of the pods behind a service (any port), sorted for stable output. */
export function serviceIdentities(push: PushContext, fqdn: string): string[] {
  let byHost = sansCache.get(push);
  if (!byHost) { byHost = new Map(); sansCache.set(push, byHost); }
  const cached = byHost.get(fqdn);
  if (cached) return cached;
  const ids = new Set<string>();
  for (const eps of push.service(fqdn)?.endpoints.values() ?? []) {
    for (const ep of eps) {
      const pod = ep.podName ? push.pod(ep.namespace, ep.podName) : push.podByIp(ep.address);
      if (!pod) continue;
      ids.add(`spiffe://${push.security.trustDomain}/ns/${pod.metadata.namespace ?? ep.namespace}/sa/${pod.spec.serviceAccountName || 'default'}`);
    }
  }
  const out = [...ids].sort();
  byHost.set(fqdn, out);
  return out;
}

/** Sets the cluster's transport socket(s) for its destination (mutates and returns it). */
export function applyUpstreamTls(push: PushContext, cluster: Cluster, namespace?: string): Cluster {
  if (!push.security.enabled) return cluster;
  const parsed = parseOutboundClusterName(cluster.name);
  if (!parsed) return cluster;
  const { port, subset, fqdn } = parsed;
  const tls = clusterTrafficPolicy(push, cluster.name, namespace)?.tls;
  if (tls) {
    // ClientTLSSettings.mode defaults to DISABLE (the enum's zero value).
    const mode = tls.mode ?? 'DISABLE';
    const sans = tls.subjectAltNames ?? [];
    if (mode === 'ISTIO_MUTUAL') {
      cluster.transportSocket = upstreamIstioMtls(tls.sni ?? istioSni(port, subset, fqdn), sans.length ? sans : serviceIdentities(push, fqdn));
    } else if (mode === 'SIMPLE' || mode === 'MUTUAL') {
      cluster.transportSocket = upstreamFileTls({
        sni: tls.sni ?? fqdn, caCertificates: tls.caCertificates, sans,
        ...(mode === 'MUTUAL' ? { clientCertificate: tls.clientCertificate, privateKey: tls.privateKey } : {}),
      });
    }
    return cluster;
  }
  // A destination whose namespace (or the mesh) disables mTLS gets no auto mTLS (Istio's serviceMTLSMode).
  const svc = push.service(fqdn);
  if (svc && workloadMtls(push, { namespace: svc.namespace, labels: {} }).mode === 'DISABLE') return cluster;
  cluster.transportSocketMatches = [
    { name: 'tlsMode-istio', match: ISTIO_TLS_MODE, transportSocket: upstreamIstioMtls(istioSni(port, subset, fqdn), serviceIdentities(push, fqdn)) },
    { name: 'tlsMode-disabled', match: {}, transportSocket: RAW_BUFFER_SOCKET },
  ];
  return cluster;
}

/** EDS: endpoints of pods with a sidecar say so, for the cluster's transportSocketMatches. */
export function withTlsModeMetadata(push: PushContext, ep: EndpointModel, lb: LbEndpoint): LbEndpoint {
  if (!push.security.enabled || ep.labels[TLS_MODE_LABEL] !== 'istio') return lb;
  return { ...lb, metadata: { filterMetadata: { [TRANSPORT_SOCKET_MATCH]: ISTIO_TLS_MODE } } };
}
