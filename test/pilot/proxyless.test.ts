// Proxyless gRPC through pilot: a real @grpc/grpc-js-xds client (bootstrap pointing at the
// xDS server) resolves xds:///greeter.default.svc.cluster.local:7070 and reaches two real
// gRPC backends (v1 and v2 on loopback) through an 80/20 VirtualService split, then a
// retry policy on `unavailable` is honoured by the client itself.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import type { DestinationRule, VirtualService } from '../../api/istio/index.js';
import type { Endpoints, Pod, Service } from '../../api/kube/index.js';
import type { ConfigInputs } from '../../pilot/model/inputs.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { XdsServer } from '../../pilot/xds/server.js';
import { greeterService, startGreeter, type GreeterBackend, type GreeterClient } from './greeter.js';

const FQDN = 'greeter.default.svc.cluster.local';
const PORT = 7070;
const NODE_ID = 'proxyless~127.0.0.1~client-0.default~default.svc.cluster.local';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

async function backend(version: string): Promise<GreeterBackend> {
  const b = await startGreeter(version);
  cleanups.push(() => b.stop());
  return b;
}

function pod(name: string, version: string): Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app: 'greeter', version }, resourceVersion: '1' },
    spec: { containers: [{ name: 'app', image: 'trellis/sample-grpc:0.1.0' }] },
    status: { phase: 'Running', podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }] },
  };
}

function inputs(v1Port: number, v2Port: number, vs: VirtualService): ConfigInputs {
  const svc: Service = {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'greeter', namespace: 'default' },
    spec: { clusterIP: '10.96.0.80', selector: { app: 'greeter' }, ports: [{ name: 'grpc', port: PORT, targetPort: 'grpc', protocol: 'TCP' }] },
  };
  // The two versions listen on different loopback ports, so they are two Endpoints subsets.
  const eps: Endpoints = {
    apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'greeter', namespace: 'default' },
    subsets: [
      { addresses: [{ ip: '127.0.0.1', targetRef: { kind: 'Pod', name: 'greeter-v1', namespace: 'default' } }], ports: [{ name: 'grpc', port: v1Port, protocol: 'TCP' }] },
      { addresses: [{ ip: '127.0.0.1', targetRef: { kind: 'Pod', name: 'greeter-v2', namespace: 'default' } }], ports: [{ name: 'grpc', port: v2Port, protocol: 'TCP' }] },
    ],
  };
  const dr: DestinationRule = {
    apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule',
    metadata: { name: 'greeter', namespace: 'default', creationTimestamp: '2025-01-01T00:00:00Z' },
    spec: { host: 'greeter', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
  };
  return {
    namespaces: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }],
    services: [svc], endpoints: [eps], pods: [pod('greeter-v1', 'v1'), pod('greeter-v2', 'v2')],
    virtualServices: [vs], destinationRules: [dr],
  };
}

function vs(http: NonNullable<VirtualService['spec']['http']>): VirtualService {
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'VirtualService',
    metadata: { name: 'greeter', namespace: 'default', creationTimestamp: '2025-01-01T00:00:00Z' },
    spec: { hosts: ['greeter'], http },
  };
}

const split = (w1: number, w2: number) => vs([{ route: [
  { destination: { host: 'greeter', subset: 'v1' }, weight: w1 },
  { destination: { host: 'greeter', subset: 'v2' }, weight: w2 },
] }]);
const splitWithRetries = (attempts: number) => vs([{
  route: [{ destination: { host: 'greeter', subset: 'v1' }, weight: 80 }, { destination: { host: 'greeter', subset: 'v2' }, weight: 20 }],
  retries: { attempts, retryOn: 'unavailable' },
}]);

function hello(client: GreeterClient): Promise<{ version?: string; code?: number }> {
  return new Promise((resolve) => {
    client.Hello({ name: 'x' }, { deadline: Date.now() + 5_000 }, (e, r) => resolve(e ? { code: e.code } : { version: r?.version }));
  });
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 8_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) { if (await cond()) return; await new Promise((r) => setTimeout(r, 50)); }
  throw new Error(`timed out waiting for ${what}`);
}

test('proxyless gRPC: grpc-js-xds client follows an 80/20 split and a retry policy from pilot', async () => {
  const v1 = await backend('v1');
  const v2 = await backend('v2');
  const server = new XdsServer({ host: '127.0.0.1', port: 0 });
  const xdsPort = await server.start();
  cleanups.push(() => server.stop(500));
  let version = 0;
  const setVs = (v: VirtualService) => server.update(PushContext.build(inputs(v1.port, v2.port, v), { version: String(++version) }));
  setVs(split(80, 20));

  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    // grpc-js-xds requires node.locality (it may be empty).
    node: { id: NODE_ID, locality: {}, metadata: { NAMESPACE: 'default', LABELS: { app: 'client' } } },
  });
  xds.register();
  const client = new (greeterService().Client)(`xds:///${FQDN}:${PORT}`, grpc.credentials.createInsecure()) as unknown as GreeterClient;
  cleanups.push(() => client.close());

  const first = await hello(client);
  assert.ok(first.version, `first call failed with code ${first.code}`);
  const counts: Record<string, number> = { v1: 0, v2: 0 };
  const N = 200;
  const results = await Promise.all(Array.from({ length: N }, () => hello(client)));
  for (const r of results) { assert.ok(r.version, `call failed with code ${r.code}`); counts[r.version]++; }
  // 80/20 of 200: v2 ~ Binomial(200, 0.2), mean 40, sd ~5.7; 22..62 is beyond 3 sd.
  assert.ok(counts.v2 >= 22 && counts.v2 <= 62, `split ${JSON.stringify(counts)}`);
  assert.equal(counts.v1 + counts.v2, N);

  /** The client ACKed the latest route configuration (it applies it on receipt). */
  const acked = (): Promise<void> => until('the client to ACK the latest routes', async () => {
    const t = server.syncz().find((s) => s.nodeId === NODE_ID)?.types.rds;
    return t?.status === 'ACKED' && t.ackedVersion?.startsWith(`${version}-`) === true;
  }).then(() => new Promise((r) => setTimeout(r, 50)));

  const status = server.syncz().find((s) => s.nodeId === NODE_ID);
  assert.ok(status?.proxyless);
  for (const t of ['lds', 'rds', 'cds', 'eds']) assert.equal(status?.types[t]?.status, 'ACKED', `${t}: ${JSON.stringify(status?.types[t])}`);
  assert.deepEqual(status?.types.lds.subscribed, [`${FQDN}:${PORT}`]);

  // Retries off (attempts 0): a failing attempt reaches the client. The split stays, so
  // both backends fail their next call and whichever is picked answers UNAVAILABLE.
  setVs(splitWithRetries(0));
  await acked();
  v1.failNext = 1; v2.failNext = 1;
  assert.equal((await hello(client)).code, grpc.status.UNAVAILABLE);
  v1.failNext = 0; v2.failNext = 0;

  // Retries on `unavailable` (3 attempts): the client retries by itself and succeeds.
  setVs(splitWithRetries(3));
  await acked();
  v1.failNext = 1; v2.failNext = 1;
  const before = v1.calls + v2.calls;
  const r = await hello(client);
  assert.ok(r.version, `retried call failed with code ${r.code}`);
  // Every attempt is either a consumed failure or the final success.
  const failures = 2 - (v1.failNext + v2.failNext);
  assert.ok(failures >= 1, 'the first attempt failed');
  assert.equal(v1.calls + v2.calls - before, failures + 1, 'failed attempts were retried by the client');
});
