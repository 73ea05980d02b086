// The webhook over real HTTPS, verified against the CA it generated, with a fake
// kube-apiserver (plain HTTP on loopback) holding the MutatingWebhookConfiguration.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KubeClient, type Pod } from '../../api/kube/index.js';
import { startInjector, type RunningInjector } from '../../injector/main.js';
import { applyJsonPatch } from '../../cluster/apiserver/patch.js';
import { applyPatch, type Op } from './jsonpatch-apply.js';

interface Mwc { metadata: { name: string; resourceVersion?: string }; webhooks: { name: string; clientConfig: { caBundle?: string; service?: unknown } }[] }

/** Just enough of the apiserver for the caBundle reconciler: GET and JSON PATCH of one MWC. */
class FakeApiserver {
  mwc: Mwc | undefined;
  patches: Op[][] = [];
  server = http.createServer((req, res) => this.handle(req, res));
  private static readonly PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/trellis-sidecar-injector';

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (code: number, body: unknown): void => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
      if (req.url !== FakeApiserver.PATH || !this.mwc) {
        reply(404, { kind: 'Status', status: 'Failure', code: 404, reason: 'NotFound', message: `${req.url} not found` });
        return;
      }
      if (req.method === 'GET') { reply(200, this.mwc); return; }
      if (req.method === 'PATCH' && req.headers['content-type'] === 'application/json-patch+json') {
        const ops = JSON.parse(Buffer.concat(chunks).toString()) as Op[];
        this.patches.push(ops);
        try { this.mwc = applyPatch(this.mwc, ops); } catch (e) {
          reply(422, { kind: 'Status', status: 'Failure', code: 422, reason: 'Invalid', message: (e as Error).message });
          return;
        }
        reply(200, this.mwc);
        return;
      }
      reply(405, { kind: 'Status', status: 'Failure', code: 405, reason: 'MethodNotAllowed', message: String(req.method) });
    });
  }
}

function post(port: number, ca: string, body: unknown, path = '/inject'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = https.request({
      host: '127.0.0.1', port, path, method: 'POST', ca,
      // Verify the name the apiserver uses for the Service.
      servername: 'trellis-injector.trellis-system.svc',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

async function getReady(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/ready`);
  await res.text();
  return res.status;
}

function review(uid: string, pod: Pod, namespace = 'demo'): unknown {
  return {
    apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
    request: {
      uid, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' },
      namespace, operation: 'CREATE', object: pod,
    },
  };
}

const pod: Pod = {
  apiVersion: 'v1', kind: 'Pod',
  metadata: { generateName: 'web-v1-abc12-', labels: { app: 'web', version: 'v1' } },
  spec: { containers: [{ name: 'web', image: 'trellis/sample-http:0.1.0' }] },
};

describe('injector webhook over HTTPS', () => {
  const api = new FakeApiserver();
  let injector: RunningInjector;
  let client: KubeClient;
  const logs: string[] = [];

  before(async () => {
    await new Promise<void>((r) => api.server.listen(0, '127.0.0.1', r));
    client = new KubeClient({ server: `http://127.0.0.1:${(api.server.address() as AddressInfo).port}` });
    injector = await startInjector({ host: '127.0.0.1', port: 0, readyPort: 0, client, resyncMs: 100, watchTemplate: false, reportMissingSidecars: false, log: (m) => logs.push(m) });
  });

  after(async () => {
    await injector?.close();
    await client?.close();
    await new Promise<void>((r) => api.server.close(() => r()));
  });

  it('is not ready until caBundle is set on every webhook, then ready', async () => {
    assert.equal(await getReady(injector.readyPort ?? 0), 503);
    assert.equal(injector.isReady(), false);
    // The configuration appears after the injector started (install order: 04 before 05).
    api.mwc = {
      metadata: { name: 'trellis-sidecar-injector' },
      webhooks: [{ name: 'sidecar-injector.istio.io', clientConfig: { service: {} } }, { name: 'second.istio.io', clientConfig: { caBundle: 'c3RhbGU=' } }],
    };
    await injector.waitReady();
    assert.equal(await getReady(injector.readyPort ?? 0), 200);
    const want = Buffer.from(injector.caCertPem).toString('base64');
    assert.deepEqual(api.mwc.webhooks.map((w) => w.clientConfig.caBundle), [want, want]);
    assert.doesNotMatch(logs.join('\n'), /PRIVATE KEY/);

    // A re-applied manifest without caBundle is repaired.
    delete api.mwc.webhooks[0].clientConfig.caBundle;
    for (let i = 0; i < 50 && api.mwc.webhooks[0].clientConfig.caBundle !== want; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(api.mwc.webhooks[0].clientConfig.caBundle, want);
  });

  it('answers an AdmissionReview with a base64 JSONPatch, over TLS verified by its CA', async () => {
    const res = await post(injector.port, injector.caCertPem, review('uid-1', pod));
    assert.equal(res.status, 200);
    const out = JSON.parse(res.body) as { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; patchType: string; patch: string } };
    assert.equal(out.apiVersion, 'admission.k8s.io/v1');
    assert.equal(out.kind, 'AdmissionReview');
    assert.equal(out.response.uid, 'uid-1');
    assert.equal(out.response.allowed, true);
    assert.equal(out.response.patchType, 'JSONPatch');
    const ops = JSON.parse(Buffer.from(out.response.patch, 'base64').toString()) as Op[];
    const patched = applyPatch(pod, ops);
    assert.deepEqual(patched.spec.initContainers?.map((c) => c.name), ['istio-init', 'istio-proxy']);
    assert.equal(patched.metadata.labels?.['security.istio.io/tlsMode'], 'istio');
    // The embedded apiserver's RFC 6902 implementation agrees with ours.
    assert.deepEqual(applyJsonPatch(structuredClone(pod) as unknown as Parameters<typeof applyJsonPatch>[0], ops), patched);
  });

  it('answers opted-out pods and non-pods with allowed and no patch', async () => {
    const optedOut = { ...pod, metadata: { ...pod.metadata, annotations: { 'sidecar.istio.io/inject': 'false' } } };
    const out = JSON.parse((await post(injector.port, injector.caCertPem, review('uid-2', optedOut))).body) as { response: Record<string, unknown> };
    assert.deepEqual(out.response, { uid: 'uid-2', allowed: true });
  });

  it('rejects a pod with an invalid traffic annotation, naming the annotation', async () => {
    const bad = { ...pod, metadata: { ...pod.metadata, annotations: { 'traffic.sidecar.istio.io/excludeOutboundPorts': 'x' } } };
    const out = JSON.parse((await post(injector.port, injector.caCertPem, review('uid-3', bad))).body) as { response: { allowed: boolean; status: { message: string } } };
    assert.equal(out.response.allowed, false);
    assert.match(out.response.status.message, /excludeOutboundPorts/);
  });

  it('returns 400 for a body that is not an AdmissionReview', async () => {
    const res = await post(injector.port, injector.caCertPem, { kind: 'Pod' });
    assert.equal(res.status, 400);
    assert.match(res.body, /kind/);
  });

  it('fails TLS verification without the generated CA', async () => {
    await assert.rejects(post(injector.port, '', review('uid-4', pod)), /self.signed|unable to verify|certificate/i);
  });
});
