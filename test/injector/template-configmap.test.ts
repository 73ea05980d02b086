// The injection template in the ConfigMap istio-sidecar-injector, through a real API server:
// the injector renders pods with it, follows edits, and keeps its last good template when an
// edit is invalid (the log names the field).
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { KubeClient, R, type Pod } from '../../api/kube/index.js';
import { startInjector, type RunningInjector } from '../../injector/main.js';
import { startTestServer, type TestServer } from '../apiserver/helpers.js';

const NS = 'trellis-system';

function review(pod: Pod): Promise<{ patch: { op: string; path: string; value?: unknown }[] }> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify({
      apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
      request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'demo', operation: 'CREATE', object: pod },
    });
    const req = https.request({
      host: '127.0.0.1', port: injector.port, path: '/inject', method: 'POST', ca: injector.caCertPem, servername: 'trellis-injector.trellis-system.svc',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { response: { patch?: string } };
        resolve({ patch: body.response.patch ? JSON.parse(Buffer.from(body.response.patch, 'base64').toString()) : [] });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

const pod: Pod = { metadata: { generateName: 'web-', labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'app:1' }] } };

/** The proxy image the injector currently renders. */
async function renderedImage(): Promise<string | undefined> {
  const { patch } = await review(pod);
  const inits = patch.find((o) => o.path === '/spec/initContainers')?.value as { name: string; image: string }[] | undefined;
  return inits?.find((c) => c.name === 'istio-proxy')?.image;
}

async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

let api: TestServer;
let client: KubeClient;
let injector: RunningInjector;
const logs: string[] = [];

describe('injection template in the istio-sidecar-injector ConfigMap', () => {
  before(async () => {
    api = await startTestServer({ memory: true });
    client = new KubeClient({ server: api.server.url, caPem: api.server.caCertPem, token: api.server.adminToken }, 'injector-template-test');
    await client.create(R.namespaces, { metadata: { name: NS } });
    await client.create(R.configMaps, { metadata: { name: 'istio-sidecar-injector', namespace: NS }, data: { values: 'proxyImage: example.com/proxyv2:1.0\nrewriteAppProbes: true\n' } });
    injector = await startInjector({ host: '127.0.0.1', port: 0, readyPort: null, client, namespace: NS, ipAddresses: ['127.0.0.1'], log: (m) => logs.push(m) });
  });

  after(async () => {
    await injector?.close();
    await client?.close();
    await api?.stop();
  });

  it('renders pods with the values from the ConfigMap at start', async () => {
    assert.equal(await renderedImage(), 'example.com/proxyv2:1.0');
  });

  it('follows an edit of the ConfigMap without a restart', async () => {
    await client.patch(R.configMaps, 'istio-sidecar-injector', NS, { data: { values: 'proxyImage: example.com/proxyv2:2.0\nstatusPort: 15021\n' } }, 'merge');
    await eventually('the new image in injected pods', async () => (await renderedImage()) === 'example.com/proxyv2:2.0');
  });

  it('keeps the last good template on a bad edit and logs the field', async () => {
    await client.patch(R.configMaps, 'istio-sidecar-injector', NS, { data: { values: 'proxyImage: example.com/proxyv2:3.0\nstatusPort: "fifteen"\n' } }, 'merge');
    await eventually('the rejection logged', () => logs.some((l) => l.includes('data.values.statusPort') && l.includes('keeping the last good template')));
    assert.equal(await renderedImage(), 'example.com/proxyv2:2.0');
    assert.match(injector.template.lastError ?? '', /statusPort: must be a port number/);

    await client.patch(R.configMaps, 'istio-sidecar-injector', NS, { data: { values: 'proxyImage: example.com/proxyv2:3.0\nproxyImag: typo\n' } }, 'merge');
    await eventually('the unknown field logged', () => logs.some((l) => l.includes('data.values.proxyImag: unknown field')));
    assert.equal(await renderedImage(), 'example.com/proxyv2:2.0');

    await client.patch(R.configMaps, 'istio-sidecar-injector', NS, { data: { values: 'proxyImage: [unclosed\n' } }, 'merge');
    await eventually('the YAML error logged', () => logs.some((l) => l.includes('not valid YAML')));
    assert.equal(await renderedImage(), 'example.com/proxyv2:2.0');

    // A good edit after bad ones is taken again.
    await client.patch(R.configMaps, 'istio-sidecar-injector', NS, { data: { values: 'proxyImage: example.com/proxyv2:4.0\n' } }, 'merge');
    await eventually('the fixed template in use', async () => (await renderedImage()) === 'example.com/proxyv2:4.0');
    assert.equal(injector.template.lastError, undefined);
  });

  it('stays idempotent with the template from the ConfigMap', async () => {
    const { patch } = await review({ ...pod, metadata: { ...pod.metadata, annotations: { 'sidecar.istio.io/status': '{}' } } });
    assert.deepEqual(patch, []);
  });
});
