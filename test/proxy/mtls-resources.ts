// The Envoy resources pilot emits for mTLS between sidecars (the contract in pilot/README.md),
// written once for the proxy tests that feed them: SDS secrets `default`/`ROOTCA`, the inbound
// DownstreamTlsContext and the outbound auto-mTLS cluster with its transport socket matches.
import { TYPE_URL } from '../../api/xds/protos.js';

export const SDS = { apiConfigSource: { apiType: 'GRPC', transportApiVersion: 'V3', grpcServices: [{ envoyGrpc: { clusterName: 'sds-grpc' } }] }, resourceApiVersion: 'V3' };
export const ADS = { ads: {}, resourceApiVersion: 'V3' };
// google.protobuf.Struct in its message form, which is what travels on the wire.
export const ISTIO_TLS_MODE = { fields: { tlsMode: { stringValue: 'istio' } } };
export const SERVER_ID = 'spiffe://cluster.local/ns/test/sa/server';
export const CLIENT_ID = 'spiffe://cluster.local/ns/test/sa/client';

export const DOWNSTREAM_MTLS = {
  name: 'envoy.transport_sockets.tls',
  typedConfig: {
    '@type': TYPE_URL.downstreamTlsContext, requireClientCertificate: { value: true },
    commonTlsContext: {
      tlsCertificateSdsSecretConfigs: [{ name: 'default', sdsConfig: SDS }],
      combinedValidationContext: {
        defaultValidationContext: { matchSubjectAltNames: [{ prefix: 'spiffe://cluster.local/' }] },
        validationContextSdsSecretConfig: { name: 'ROOTCA', sdsConfig: SDS },
      },
      alpnProtocols: ['istio', 'h2', 'http/1.1'],
    },
  },
};

/** ISTIO_MUTUAL towards an upstream that must present one of `sans`. */
export function upstreamMtls(sni: string, sans: string[]): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typedConfig: {
      '@type': TYPE_URL.upstreamTlsContext, sni,
      commonTlsContext: {
        tlsCertificateSdsSecretConfigs: [{ name: 'default', sdsConfig: SDS }],
        combinedValidationContext: {
          defaultValidationContext: { matchSubjectAltNames: sans.map((exact) => ({ exact })) },
          validationContextSdsSecretConfig: { name: 'ROOTCA', sdsConfig: SDS },
        },
        alpnProtocols: ['istio'],
      },
    },
  };
}

/** An EDS cluster with automatic mTLS: TLS to endpoints labelled tlsMode=istio, plaintext to the rest. */
export function autoMtlsCluster(name: string, sans: string[], extra: object = {}, sni = `outbound_.80_._.${name}`): object {
  return {
    name, type: 'EDS', edsClusterConfig: { edsConfig: ADS }, connectTimeout: { seconds: 2 }, ...extra,
    transportSocketMatches: [
      { name: 'tlsMode-istio', match: ISTIO_TLS_MODE, transportSocket: upstreamMtls(sni, sans) },
      { name: 'tlsMode-disabled', match: {}, transportSocket: { name: 'envoy.transport_sockets.raw_buffer', typedConfig: { '@type': TYPE_URL.rawBuffer } } },
    ],
  };
}

/** A ClusterLoadAssignment with one loopback endpoint; `sidecar` labels it tlsMode=istio as pilot does. */
export function endpoints(name: string, port: number, sidecar: boolean): object {
  return {
    clusterName: name,
    endpoints: [{ lbEndpoints: [{
      endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } },
      ...(sidecar ? { metadata: { filterMetadata: { 'envoy.transport_socket_match': ISTIO_TLS_MODE } } } : {}),
    }] }],
  };
}
