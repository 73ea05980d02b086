// Loads ca.proto (Istio's IstioCertificateService) with proto-loader. tsc does not copy
// .proto files into dist/, so the file is read from the source tree under the repo root.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface IstioCertificateRequest {
  csr: string;
  /** Seconds; 0 means the CA's default. */
  validity_duration: number;
  metadata?: unknown;
}

export interface IstioCertificateResponse {
  /** Leaf first, then intermediates; the last element is the root. */
  cert_chain: string[];
}

export const CERTIFICATE_SERVICE = 'istio.v1.auth.IstioCertificateService';

/** The nearest ancestor of `from` holding package.json (works from dist/ and from the source tree). */
function repoRoot(from: string): string {
  let dir = from;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`certificate-service: no package.json above ${from}`);
    dir = parent;
  }
}

export function caProtoPath(): string {
  const file = path.join(repoRoot(path.dirname(fileURLToPath(import.meta.url))), 'api', 'security', 'ca.proto');
  if (!fs.existsSync(file)) throw new Error(`certificate-service: ${file} is missing`);
  return file;
}

export interface CertificateServiceClient extends grpc.Client {
  CreateCertificate(
    req: IstioCertificateRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: IstioCertificateResponse) => void,
  ): grpc.ClientUnaryCall;
}

interface Loaded {
  service: grpc.ServiceDefinition;
  Client: new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ClientOptions) => CertificateServiceClient;
}

let loaded: Loaded | undefined;

function load(): Loaded {
  if (loaded) return loaded;
  const def = protoLoader.loadSync(caProtoPath(), { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } } };
  const ctor = pkg.istio.v1.auth.IstioCertificateService;
  loaded = { service: ctor.service, Client: ctor as unknown as Loaded['Client'] };
  return loaded;
}

/** The service definition, for grpc.Server.addService. */
export function certificateServiceDefinition(): grpc.ServiceDefinition {
  return load().service;
}

/** A client stub for IstioCertificateService at `address` (host:port). */
export function certificateServiceClient(address: string, creds: grpc.ChannelCredentials, options?: grpc.ClientOptions): CertificateServiceClient {
  const { Client } = load();
  return new Client(address, creds, options);
}
