// A cluster's transport: transportSocket and transportSocketMatches (chosen per endpoint by
// its `envoy.transport_socket_match` metadata, Istio's automatic mTLS), each TLS
// (UpstreamTlsContext) or plaintext.
import { TYPE_URL } from '../../../api/xds/protos.js';
import { arr, FieldErrors, obj, str, type Obj } from './fields.js';
import { stringStruct } from './endpoint.js';
import { decodeTransportSocket, decodeUpstreamTls, type UpstreamTlsConfig } from './tls-context.js';

export const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';

export interface TransportSocketMatch {
  name: string;
  match: Record<string, string>;
  /** undefined: plaintext (raw_buffer). */
  tls?: UpstreamTlsConfig;
}

export interface UpstreamTransport {
  /** The cluster's transportSocket when TLS; undefined: plaintext. */
  tls?: UpstreamTlsConfig;
  matches: TransportSocketMatch[];
}

function decodeSocket(raw: Obj | undefined, field: string, errors: FieldErrors): UpstreamTlsConfig | undefined {
  if (!raw) return undefined;
  const t = decodeTransportSocket(raw, field, errors, decodeUpstreamTls, TYPE_URL.upstreamTlsContext);
  return t && t !== 'plaintext' ? t : undefined;
}

export function decodeUpstreamTransport(raw: Obj, errors: FieldErrors): UpstreamTransport {
  const tls = decodeSocket(obj(raw.transportSocket), 'transportSocket', errors);
  const matches: TransportSocketMatch[] = [];
  arr(raw.transportSocketMatches).forEach((m, i) => {
    const mo = obj(m) ?? {};
    const field = `transportSocketMatches[${i}]`;
    // A google.protobuf.Struct: { fields: { k: { stringValue } } } on the wire.
    const match = stringStruct(mo.match) ?? {};
    const ts = obj(mo.transportSocket);
    if (!ts) errors.add(`${field}.transportSocket`, 'required');
    matches.push({ name: str(mo.name) ?? '', match, tls: decodeSocket(ts, `${field}.transportSocket`, errors) });
  });
  return { tls, matches };
}

/** Envoy's choice per endpoint: the first match whose keys all equal the endpoint's metadata, else the cluster's socket. */
export function transportFor(t: UpstreamTransport | undefined, metadata: Readonly<Record<string, string>> | undefined): UpstreamTlsConfig | undefined {
  if (!t) return undefined;
  for (const m of t.matches) {
    if (Object.entries(m.match).every(([k, v]) => metadata?.[k] === v)) return m.tls;
  }
  return t.tls;
}
