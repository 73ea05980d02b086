// MeshConfig accessLogFile/accessLogEncoding -> the HCM's access_log: Envoy's file logger,
// with Istio's default JSON fields when the encoding is JSON (else the proxy's text line).
import { TYPE_URL } from '../../../api/xds/protos.js';
import type { MeshOptions } from '../../model/mesh-config.js';
import type { Json } from './envoy.js';

// Istio's EnvoyJSONLogFormatIstio (upstream_service_time left out: the proxy has no such value).
const ISTIO_JSON_FIELDS: Record<string, string> = {
  start_time: '%START_TIME%', route_name: '%ROUTE_NAME%', method: '%REQ(:METHOD)%', path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%', response_code: '%RESPONSE_CODE%', response_flags: '%RESPONSE_FLAGS%', response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%', upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
  bytes_received: '%BYTES_RECEIVED%', bytes_sent: '%BYTES_SENT%', duration: '%DURATION%', x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%', request_id: '%REQ(X-REQUEST-ID)%', authority: '%REQ(:AUTHORITY)%', upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER%', upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%', downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%', requested_server_name: '%REQUESTED_SERVER_NAME%',
  downstream_peer_uri_san: '%DOWNSTREAM_PEER_URI_SAN%', upstream_peer_uri_san: '%UPSTREAM_PEER_URI_SAN%',
};

// google.protobuf.Struct in message form: packAny (protobufjs) has no JSON mapping for Struct.
const ISTIO_JSON_STRUCT = { fields: Object.fromEntries(Object.entries(ISTIO_JSON_FIELDS).map(([k, v]) => [k, { stringValue: v }])) };

/** The HCM access_log list for the mesh settings: none without an access log file. */
export function accessLogConfig(mesh: MeshOptions | undefined): { accessLog?: Json[] } {
  if (!mesh?.accessLogFile) return {};
  const logFormat = mesh.accessLogEncoding === 'JSON' ? { logFormat: { jsonFormat: ISTIO_JSON_STRUCT } } : {};
  return { accessLog: [{ name: 'envoy.access_loggers.file', typedConfig: { '@type': TYPE_URL.fileAccessLog, path: mesh.accessLogFile, ...logFormat } }] };
}
