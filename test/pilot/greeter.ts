// The test gRPC service (fixtures/greeter.proto): each backend answers Hello with its version.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO = fileURLToPath(new URL('../../../test/pilot/fixtures/greeter.proto', import.meta.url));

export interface HelloReply { version: string }
export type GreeterClient = grpc.Client & { Hello(req: { name: string }, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: HelloReply) => void): void };

export function greeterService(): { service: grpc.ServiceDefinition; Client: grpc.ServiceClientConstructor } {
  const def = protoLoader.loadSync(PROTO, { keepCase: false, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { trellis: { test: { Greeter: grpc.ServiceClientConstructor } } };
  return { service: pkg.trellis.test.Greeter.service, Client: pkg.trellis.test.Greeter };
}

export interface GreeterBackend { port: number; calls: number; failNext: number; stop(): void }

/** A backend answering its version; `failNext` calls are answered UNAVAILABLE first. */
export async function startGreeter(version: string, host = '127.0.0.1'): Promise<GreeterBackend> {
  const server = new grpc.Server();
  const state: GreeterBackend = { port: 0, calls: 0, failNext: 0, stop: () => server.forceShutdown() };
  server.addService(greeterService().service, {
    Hello: (_call: grpc.ServerUnaryCall<unknown, HelloReply>, cb: grpc.sendUnaryData<HelloReply>) => {
      state.calls++;
      if (state.failNext > 0) { state.failNext--; cb({ code: grpc.status.UNAVAILABLE, details: `${version} unavailable for the test` }); return; }
      cb(null, { version });
    },
  });
  state.port = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return state;
}

/** One Hello call with a deadline. */
export function hello(client: GreeterClient, timeoutMs = 5_000): Promise<HelloReply> {
  return new Promise((resolve, reject) => client.Hello({ name: 'test' }, { deadline: Date.now() + timeoutMs }, (e, r) => (e ? reject(e) : resolve(r as HelloReply))));
}
