// The missing-sidecar report through a real API server: pods that asked for injection but
// carry no istio-proxy get a Warning Event, a log line naming them and count in the gauge;
// opted-out, injected, system and uninterested pods do not.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KubeClient, R, type KubeObject, type Pod } from '../../api/kube/index.js';
import { startInjector, type RunningInjector } from '../../injector/main.js';
import { startTestServer, type TestServer } from '../apiserver/helpers.js';

interface Event extends KubeObject { involvedObject: { name?: string; kind?: string }; reason?: string; type?: string; message?: string }

function pod(name: string, namespace: string, extra: { labels?: Record<string, string>; annotations?: Record<string, string>; sidecar?: boolean } = {}): Pod {
  return {
    metadata: { name, namespace, labels: extra.labels, annotations: extra.annotations },
    spec: {
      containers: [{ name: 'app', image: 'trellis/sample-http:0.1.0' }],
      ...(extra.sidecar ? { initContainers: [{ name: 'istio-proxy', image: 'trellis/proxyv2:0.1.0', restartPolicy: 'Always' }] } : {}),
    },
  };
}

async function eventually<T>(what: string, get: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

let api: TestServer;
let client: KubeClient;
let injector: RunningInjector;
const logs: string[] = [];

async function warnings(namespace: string): Promise<Event[]> {
  return (await client.list<Event>(R.events, { namespace })).items.filter((e) => e.reason === 'MissingSidecar');
}

async function gauge(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${injector.readyPort}/metrics`)).text();
  const m = /^trellis_injector_pods_missing_sidecar (\d+)$/m.exec(text);
  return m ? Number(m[1]) : NaN;
}

describe('pods that should carry a sidecar but do not', () => {
  before(async () => {
    api = await startTestServer({ memory: true });
    client = new KubeClient({ server: api.server.url, caPem: api.server.caCertPem, token: api.server.adminToken }, 'missing-sidecar-test');
    await client.create(R.namespaces, { metadata: { name: 'mesh', labels: { 'istio-injection': 'enabled' } } });
    await client.create(R.namespaces, { metadata: { name: 'plain' } });
    await client.create(R.namespaces, { metadata: { name: 'trellis-system' } });
    // Created before the injector runs: as if it had been down.
    await client.create(R.pods, pod('bare', 'mesh'));
    await client.create(R.pods, pod('opted-out', 'mesh', { annotations: { 'sidecar.istio.io/inject': 'false' } }));
    await client.create(R.pods, pod('opted-out-label', 'mesh', { labels: { 'sidecar.istio.io/inject': 'false' } }));
    await client.create(R.pods, pod('injected', 'mesh', { sidecar: true }));
    await client.create(R.pods, pod('uninterested', 'plain'));
    await client.create(R.pods, pod('asks', 'plain', { labels: { 'sidecar.istio.io/inject': 'true' } }));
    injector = await startInjector({ host: '127.0.0.1', port: 0, readyPort: 0, client, namespace: 'trellis-system', log: (m) => logs.push(m) });
  });

  after(async () => {
    await injector?.close();
    await client?.close();
    await api?.stop();
  });

  it('reports exactly the pods that asked for injection and lack istio-proxy', async () => {
    await eventually('both reports', () => (injector.missingSidecars?.missingPods.length === 2 ? true : undefined));
    assert.deepEqual(injector.missingSidecars?.missingPods, ['mesh/bare', 'plain/asks']);
    const ev = await eventually('the Warning event on mesh/bare', async () => (await warnings('mesh'))[0]);
    assert.equal(ev.type, 'Warning');
    assert.equal(ev.involvedObject.kind, 'Pod');
    assert.equal(ev.involvedObject.name, 'bare');
    assert.match(ev.message ?? '', /namespace mesh has istio-injection=enabled/);
    assert.equal((await warnings('mesh')).length, 1, 'opted-out and injected pods get no event');
    const asks = await eventually('the Warning event on plain/asks', async () => (await warnings('plain'))[0]);
    assert.equal(asks.involvedObject.name, 'asks');
    assert.ok(logs.some((l) => l.includes('pod mesh/bare should carry a sidecar')), 'a log line names the pod');
    assert.equal(await gauge(), 2);
  });

  it('reports a pod created later, and a namespace that is labelled later', async () => {
    await client.create(R.pods, pod('late', 'mesh'));
    await eventually('mesh/late reported', () => (injector.missingSidecars?.missingPods.includes('mesh/late') ? true : undefined));
    await client.patch(R.namespaces, 'plain', undefined, { metadata: { labels: { 'istio-injection': 'enabled' } } }, 'merge');
    await eventually('plain/uninterested reported', () => (injector.missingSidecars?.missingPods.includes('plain/uninterested') ? true : undefined));
    assert.equal(await gauge(), 4);
  });

  it('forgets a pod once it is deleted', async () => {
    await client.delete(R.pods, 'bare', 'mesh', { gracePeriodSeconds: 0 });
    await eventually('mesh/bare forgotten', () => (injector.missingSidecars?.missingPods.includes('mesh/bare') ? undefined : true));
    assert.equal(await gauge(), 3);
    assert.equal(logs.filter((l) => l.includes('pod mesh/late should carry')).length, 1, 'reported once per pod');
  });
});
