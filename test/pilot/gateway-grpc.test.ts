// gRPC through the ingress gateway with the clusters pilot generates: a Gateway server of
// protocol GRPC and a VirtualService send calls to a Service whose port is named `grpc`.
// The router must speak HTTP/2 to that backend (gRPC has no HTTP/1.1 form), which pilot
// says with the cluster's HttpProtocolOptions, as Istio does for GRPC and HTTP2 ports.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { R, type Endpoints, type Service } from '../../api/kube/index.js';
import { waitFor } from '../proxy/fixtures.js';
import { gateway, gatewayVs } from './gateway-fixtures.js';
import { slicesFor } from './fixtures.js';
import { greeterService, hello, startGreeter, type GreeterClient } from './greeter.js';
import { createPod, startMeshApi, startRouter } from './router-harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });

test('a gRPC call crosses the gateway to a grpc-named service port over HTTP/2', async () => {
  const { client, close } = await startMeshApi();
  cleanups.push(close);
  const ratings = await startGreeter('ratings-v1', '127.0.0.21');
  cleanups.push(() => ratings.stop());
  await createPod(client, 'ratings-v1-abc', 'default', '127.0.0.21', { app: 'ratings' }, ratings.port, 'grpc');
  await client.create<Service>(R.services, { metadata: { name: 'ratings', namespace: 'default' }, spec: { selector: { app: 'ratings' }, ports: [{ name: 'grpc', port: 9090, targetPort: 'grpc', protocol: 'TCP' }] } });
  const eps: Endpoints = {
    metadata: { name: 'ratings', namespace: 'default' },
    subsets: [{ addresses: [{ ip: '127.0.0.21', targetRef: { kind: 'Pod', name: 'ratings-v1-abc', namespace: 'default' } }], ports: [{ name: 'grpc', port: ratings.port, protocol: 'TCP' }] }],
  };
  for (const sl of slicesFor(eps)) await client.create(R.endpointSlices, sl);
  await client.create(R.gateways, gateway('grpc-gateway', [{ port: { number: 80, name: 'grpc', protocol: 'GRPC' }, hosts: ['ratings.example.com'] }]));
  await client.create(R.virtualServices, gatewayVs('ratings-ingress', ['ratings.example.com'], ['grpc-gateway'], [{ route: [{ destination: { host: 'ratings', port: { number: 9090 } } }] }]));

  const router = await startRouter(client);
  cleanups.push(() => router.stop());
  const stub = new (greeterService().Client)(`127.0.0.1:${router.port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'ratings.example.com' }) as unknown as GreeterClient;
  cleanups.push(() => stub.close());
  await waitFor('a gRPC answer through the gateway', async () => (await hello(stub).catch(() => undefined))?.version === 'ratings-v1', 20_000);
  for (let i = 0; i < 20; i++) assert.equal((await hello(stub)).version, 'ratings-v1');
  assert.ok(ratings.calls >= 21);
});
