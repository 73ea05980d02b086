// The transport sockets of the pilot/proxy mTLS contract (Istio's shapes): the proxy
// resolves the SDS secrets `default` (its workload certificate) and `ROOTCA` (the trust
// bundle) itself, as Istio's agent does.
import { TYPE_URL } from '../../api/xds/protos.js';
import type { Json } from '../xds/generators/envoy.js';

export const SDS_SOURCE = {
  apiConfigSource: { apiType: 'GRPC', transportApiVersion: 'V3', grpcServices: [{ envoyGrpc: { clusterName: 'sds-grpc' } }] },
  resourceApiVersion: 'V3',
} as const;

export const TLS_SOCKET = 'envoy.transport_sockets.tls';
export const TLS_INSPECTOR = { name: 'envoy.filters.listener.tls_inspector', typedConfig: { '@type': TYPE_URL.tlsInspector } };

export interface TransportSocket { name: string; typedConfig: Json }

export const RAW_BUFFER_SOCKET: TransportSocket = { name: 'envoy.transport_sockets.raw_buffer', typedConfig: { '@type': TYPE_URL.rawBuffer } };

const certificate = () => [{ name: 'default', sdsConfig: SDS_SOURCE }];
const rootCa = () => ({ name: 'ROOTCA', sdsConfig: SDS_SOURCE });

/** Inbound mTLS: a client certificate from the mesh's trust domain is required. */
export function downstreamMtls(trustDomain: string): TransportSocket {
  return {
    name: TLS_SOCKET,
    typedConfig: {
      '@type': TYPE_URL.downstreamTlsContext,
      // A BoolValue in the proto, hence the wrapper.
      requireClientCertificate: { value: true },
      commonTlsContext: {
        tlsCertificateSdsSecretConfigs: certificate(),
        combinedValidationContext: {
          defaultValidationContext: { matchSubjectAltNames: [{ prefix: `spiffe://${trustDomain}/` }] },
          validationContextSdsSecretConfig: rootCa(),
        },
        alpnProtocols: ['istio', 'h2', 'http/1.1'],
      },
    },
  };
}

/** `outbound_.<port>_.<subset>_.<fqdn>`: Istio's SNI for mesh-internal mTLS. */
export function istioSni(port: number, subset: string, fqdn: string): string {
  return `outbound_.${port}_.${subset}_.${fqdn}`;
}

/** Outbound Istio mTLS to a peer whose certificate must carry one of `sans` (exact). */
export function upstreamIstioMtls(sni: string, sans: readonly string[]): TransportSocket {
  return {
    name: TLS_SOCKET,
    typedConfig: {
      '@type': TYPE_URL.upstreamTlsContext,
      sni,
      commonTlsContext: {
        tlsCertificateSdsSecretConfigs: certificate(),
        combinedValidationContext: {
          defaultValidationContext: { matchSubjectAltNames: sans.map((exact) => ({ exact })) },
          validationContextSdsSecretConfig: rootCa(),
        },
        alpnProtocols: ['istio'],
      },
    },
  };
}

/** DestinationRule SIMPLE (server verified) or MUTUAL (plus our own certificate from files). */
export function upstreamFileTls(o: { sni: string; caCertificates?: string; sans: readonly string[]; clientCertificate?: string; privateKey?: string }): TransportSocket {
  const common: Json = {};
  if (o.caCertificates || o.sans.length) {
    const vc: Json = {};
    if (o.caCertificates) vc.trustedCa = { filename: o.caCertificates };
    if (o.sans.length) vc.matchSubjectAltNames = o.sans.map((exact) => ({ exact }));
    common.validationContext = vc;
  }
  if (o.clientCertificate && o.privateKey) {
    common.tlsCertificates = [{ certificateChain: { filename: o.clientCertificate }, privateKey: { filename: o.privateKey } }];
  }
  return { name: TLS_SOCKET, typedConfig: { '@type': TYPE_URL.upstreamTlsContext, sni: o.sni, commonTlsContext: common } };
}
