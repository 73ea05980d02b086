// The injection template in the ConfigMap istio-sidecar-injector, through a real API server:
// the injector renders pods with its values and its template, follows edits, and keeps its
// last good template when an edit is invalid (the log names the key and the field or line).
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { KubeClient, R, parseManifests, type KubeObject, type Pod } from '../../api/kube/index.js';
import { trellisHome } from '../../cli/paths.js';
import { DEFAULT_TEMPLATE } from '../../injector/sidecar-template.js';
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

/** The istio-proxy container's args the injector currently renders. */
async function proxyArgs(): Promise<string[]> {
  const { patch } = await review(pod);
  const inits = patch.find((o) => o.path === '/spec/initContainers')?.value as { name: string; args?: string[] }[] | undefined;
  return inits?.find((c) => c.name === 'istio-proxy')?.args ?? [];
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

  it('install/ puts the built-in template in the ConfigMap, so `trellis up` injects as without it', () => {
    const cm = parseManifests(fs.readFileSync(path.join(trellisHome(), 'install/04-injector.yaml'), 'utf8'), '04-injector.yaml')
      .find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'istio-sidecar-injector') as (KubeObject & { data?: Record<string, string> }) | undefined;
    assert.equal(cm?.data?.template?.trimEnd(), DEFAULT_TEMPLATE.trimEnd());
  });

  it('a changed template in the ConfigMap changes what new pods get', async () => {
    const custom = DEFAULT_TEMPLATE
      .replace('annotations: {}', 'annotations:\n  example.com/injected-for: "{{ pod.namespace }}/{{ workloadName }}"')
      .replace('args: [proxy, sidecar]', 'args: [proxy, sidecar, --custom]');
    await client.patch(R.configMaps, 'istio-sidecar-injector', NS, { data: { template: custom } }, 'merge');
    await eventually('the custom template in use', async () => (await proxyArgs()).includes('--custom'));
    const { patch } = await review(pod);
    const annotations = patch.find((o) => o.path === '/metadata/annotations')?.value as Record<string, string>;
    assert.equal(annotations['example.com/injected-for'], 'demo/web');
    assert.match(annotations['sidecar.istio.io/status'], /"initContainers":\["istio-init","istio-proxy"\]/);
  });

  it('refuses a broken template naming the key and the line, and keeps the last good one', async () => {
    const good = DEFAULT_TEMPLATE.replace('args: [proxy, sidecar]', 'args: [proxy, sidecar, --custom]');
    const lines = good.split('\n');
    const imageLine = lines.findIndex((l) => l.includes('image: "{{ values.proxyImage }}"')) + 1;
    const typo = good.replace('image: "{{ values.proxyImage }}"', 'image: "{{ values.proxyImag }}"');
    await client.patch(R.configMaps, 'istio-sidecar-injector', NS, { data: { template: typo } }, 'merge');
    await eventually('the typo rejected', () => logs.some((l) => l.includes(`ConfigMap ${NS}/istio-sidecar-injector data.template line ${imageLine}: unknown placeholder {{ values.proxyImag }}`)
      && l.includes('keeping the last good template')));
    assert.ok((await proxyArgs()).includes('--custom'), 'the last good template stays in use');

    await client.patch(R.configMaps, 'istio-sidecar-injector', NS, { data: { template: `${good}\nvolumes: [unclosed\n` } }, 'merge');
    await eventually('the YAML error rejected', () => logs.some((l) => /data\.template line \d+: not valid YAML/.test(l)));
    const noImage = good.replace('  image: "{{ values.proxyImage }}"\n  args: "{{ iptablesArgs }}"', '  args: "{{ iptablesArgs }}"');
    await client.patch(R.configMaps, 'istio-sidecar-injector', NS, { data: { template: noImage } }, 'merge');
    await eventually('the missing image rejected', () => logs.some((l) => /data\.template line \d+: initContainers\.0\.image: must be a non-empty string/.test(l)));
    assert.ok((await proxyArgs()).includes('--custom'), 'still the last good template');
    assert.match(injector.template.lastError ?? '', /initContainers\.0\.image/);

    // Back to the built-in template.
    await client.patch(R.configMaps, 'istio-sidecar-injector', NS, { data: { template: DEFAULT_TEMPLATE } }, 'merge');
    await eventually('the default template again', async () => !(await proxyArgs()).includes('--custom'));
    assert.equal(injector.template.lastError, undefined);
  });

  it('stays idempotent with the template from the ConfigMap', async () => {
    const { patch } = await review({ ...pod, metadata: { ...pod.metadata, annotations: { 'sidecar.istio.io/status': '{}' } } });
    assert.deepEqual(patch, []);
  });
});
