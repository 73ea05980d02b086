// Loads Envoy's v3 protos (shipped inside @grpc/grpc-js-xds) once, for both the
// control plane (pilot) and the data plane (proxy). Keeping the loader here means
// both sides agree on one set of descriptors.
import { createRequire } from 'node:module';
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const xdsRoot = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));

export const PROTO_INCLUDE_DIRS = [
  'envoy-api', 'xds', 'googleapis', 'protoc-gen-validate',
].map((d) => path.join(xdsRoot, 'deps', d));

// Every resource type a Trellis proxy or a proxyless client may receive.
const RESOURCE_PROTOS = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/admin/v3/config_dump.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
];

export const TYPE_URL = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  routeConfiguration: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  clusterLoadAssignment: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  httpConnectionManager:
    'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  fault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  cors: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors',
  corsPolicy: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
  previousHosts: 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  httpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  // Security: transport sockets, SDS secrets and the RBAC filters AuthorizationPolicy becomes.
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
  downstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  upstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  rawBuffer: 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
  tlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  httpInspector: 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  originalDst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  httpRbac: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
  networkRbac: 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
  // Access loggers (HCM access_log): a file, or the process's stdout/stderr.
  fileAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
  stdoutAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
  stderrAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog',
} as const;

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  json: true,
  includeDirs: PROTO_INCLUDE_DIRS,
};

let packageDefinition: protoLoader.PackageDefinition | undefined;
let grpcObject: grpc.GrpcObject | undefined;
let root: protobuf.Root | undefined;

export function xdsPackageDefinition(): protoLoader.PackageDefinition {
  packageDefinition ??= protoLoader.loadSync(RESOURCE_PROTOS, LOADER_OPTIONS);
  return packageDefinition;
}

export function xdsGrpcObject(): grpc.GrpcObject {
  grpcObject ??= grpc.loadPackageDefinition(xdsPackageDefinition());
  return grpcObject;
}

/**
 * The ADS service constructor (envoy.service.discovery.v3.AggregatedDiscoveryService), built
 * from the protobufjs Root packAny/unpackAny use, with proto-loader's (de)serializer
 * semantics (LOADER_OPTIONS). proto-loader's own package definition would hold a second copy
 * of every descriptor (~18 MB RSS in each proxy) that neither side needs to talk ADS.
 */
export function adsService(): grpc.ServiceClientConstructor {
  adsConstructor ??= serviceConstructor('envoy.service.discovery.v3.AggregatedDiscoveryService');
  return adsConstructor;
}

let adsConstructor: grpc.ServiceClientConstructor | undefined;

function serviceConstructor(fullName: string): grpc.ServiceClientConstructor {
  const service = xdsRoot_().lookupService(fullName);
  const methods: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methodsArray) {
    m.resolve();
    const req = m.resolvedRequestType;
    const res = m.resolvedResponseType;
    if (!req || !res) throw new Error(`xds protos: ${fullName}.${m.name}: request or response type not resolved`);
    methods[m.name] = {
      path: `/${fullName}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      requestSerialize: serializer(req),
      requestDeserialize: deserializer(req),
      responseSerialize: serializer(res),
      responseDeserialize: deserializer(res),
      originalName: m.name.charAt(0).toLowerCase() + m.name.slice(1),
    };
  }
  return grpc.makeGenericClientConstructor(methods as grpc.ServiceDefinition, fullName);
}

function serializer(type: protobuf.Type): (v: unknown) => Buffer {
  return (v) => {
    if (Array.isArray(v)) throw new Error(`xds protos: cannot serialize an array as ${type.fullName}`);
    const out = type.encode(type.fromObject(v as Record<string, unknown>)).finish();
    return Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.length);
  };
}

function deserializer(type: protobuf.Type): (b: Buffer) => unknown {
  const opts: protobuf.IConversionOptions = { longs: String, enums: String, defaults: false, oneofs: true, json: true };
  return (b) => type.toObject(type.decode(b), opts);
}

/** A protobufjs Root with the same protos, for packing and unpacking google.protobuf.Any. */
export function xdsRoot_(): protobuf.Root {
  if (!root) {
    root = new protobuf.Root();
    root.resolvePath = (_origin, target) => {
      for (const dir of PROTO_INCLUDE_DIRS) {
        const candidate = path.join(dir, target);
        try { require('node:fs').accessSync(candidate); return candidate; } catch { /* next */ }
      }
      return target;
    };
    root.loadSync(RESOURCE_PROTOS, { keepCase: false });
    root.resolveAll();
  }
  return root;
}

function typeName(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** Packs a plain (camelCase, proto3 JSON-like) object into an Any of the given type. */
export function packAny(typeUrl: string, message: object): { typeUrl: string; value: Buffer } {
  const type = xdsRoot_().lookupType(typeName(typeUrl));
  const msg = type.fromObject(message);
  return { typeUrl, value: Buffer.from(type.encode(msg).finish()) };
}

/** Unpacks an Any into a plain object (enums as strings, longs as strings). */
export function unpackAny<T = Record<string, unknown>>(any: { typeUrl?: string; type_url?: string; value?: Uint8Array | Buffer }): T {
  const url = any.typeUrl ?? any.type_url ?? '';
  const type = xdsRoot_().lookupType(typeName(url));
  const msg = type.decode(any.value ?? new Uint8Array());
  return type.toObject(msg, { enums: String, longs: String, oneofs: true, defaults: false, json: true }) as T;
}
