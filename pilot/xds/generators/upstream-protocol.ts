// Which HTTP version an outbound cluster speaks to its endpoints, as Istio decides it from
// the service port's protocol: HTTP2 and GRPC ports use HTTP/2 (gRPC needs its trailers and
// streams end to end); an UNKNOWN port speaks whatever the downstream spoke; an HTTP port
// stays on HTTP/1.1 unless its DestinationRule asks for `h2UpgradePolicy: UPGRADE` or
// `useClientProtocol`. TCP-like ports get no HTTP options.
import type { ConnectionPoolSettings } from '../../../api/istio/index.js';
import type { PortProtocol } from '../../model/service.js';
import { TYPE_URL } from '../../../api/xds/protos.js';
import type { Cluster, Json } from './envoy.js';

const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

type UpstreamVersion = 'h2' | 'downstream' | 'h1' | undefined;

function upstreamVersion(protocol: PortProtocol, http: ConnectionPoolSettings['http'] | undefined): UpstreamVersion {
  if (protocol === 'HTTP2' || protocol === 'GRPC') return 'h2';
  if (protocol === 'UNKNOWN') return http?.h2UpgradePolicy === 'UPGRADE' && !http.useClientProtocol ? 'h2' : 'downstream';
  if (protocol === 'HTTP' || protocol === 'GRPC-WEB') {
    if (http?.useClientProtocol) return 'downstream';
    return http?.h2UpgradePolicy === 'UPGRADE' ? 'h2' : 'h1';
  }
  return undefined;
}

/** Sets the cluster's HttpProtocolOptions for the port protocol (mutates and returns it). */
export function applyUpstreamProtocol(cluster: Cluster, protocol: PortProtocol | undefined, http: ConnectionPoolSettings['http'] | undefined): Cluster {
  const version = protocol ? upstreamVersion(protocol, http) : undefined;
  const existing = (cluster.typedExtensionProtocolOptions as Record<string, Json> | undefined)?.[HTTP_OPTIONS];
  if (!version || (version === 'h1' && !existing)) return cluster;
  const options: Json = { '@type': TYPE_URL.httpProtocolOptions };
  if (existing?.commonHttpProtocolOptions) options.commonHttpProtocolOptions = existing.commonHttpProtocolOptions;
  if (version === 'h2') options.explicitHttpConfig = { http2ProtocolOptions: {} };
  else if (version === 'h1') options.explicitHttpConfig = { httpProtocolOptions: {} };
  else options.useDownstreamProtocolConfig = { httpProtocolOptions: {}, http2ProtocolOptions: {} };
  cluster.typedExtensionProtocolOptions = { ...(cluster.typedExtensionProtocolOptions as Json | undefined), [HTTP_OPTIONS]: options };
  return cluster;
}
