import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { issueServingCert } from '../../cluster/apiserver/index.js';
import { call, ns, pod, startTestServer, watch, type TestServer } from './helpers.js';

let t: TestServer;
before(async () => { t = await startTestServer({ memory: true }); });
after(async () => { await t?.stop(); });

const crd = {
  apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
  metadata: { name: 'virtualservices.networking.istio.io' },
  spec: {
    group: 'networking.istio.io', scope: 'Namespaced',
    names: { plural: 'virtualservices', singular: 'virtualservice', kind: 'VirtualService', listKind: 'VirtualServiceList', shortNames: ['vs'] },
    versions: [
      { name: 'v1', served: true, storage: true, subresources: { status: {} },
        schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', required: ['hosts'], properties: { hosts: { type: 'array', items: { type: 'string' } }, mode: { type: 'string', enum: ['A', 'B'] } } } } } } },
      { name: 'v1beta1', served: true, storage: false, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } },
    ],
  },
};

test('a CRD is served right away through the generic path, in every served version', async () => {
  const s = t.server;
  assert.equal((await call(s, 'GET', '/apis/networking.istio.io/v1/namespaces/default/virtualservices')).status, 404);
  const c = await call(s, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  assert.equal(c.status, 201);
  assert.ok(c.body.status.conditions.some((x: any) => x.type === 'Established' && x.status === 'True'));
  const disc = await call(s, 'GET', '/apis/networking.istio.io/v1');
  const vs = disc.body.resources.find((r: any) => r.name === 'virtualservices');
  assert.deepEqual(vs.shortNames, ['vs']);
  assert.ok(disc.body.resources.some((r: any) => r.name === 'virtualservices/status'));
  const groups = await call(s, 'GET', '/apis');
  const g = groups.body.groups.find((x: any) => x.name === 'networking.istio.io');
  assert.deepEqual(g.versions.map((v: any) => v.version), ['v1', 'v1beta1']);

  const obj = { apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'web' }, spec: { hosts: ['web'], http: [{ route: [{ destination: { host: 'web' } }] }] } };
  const created = await call(s, 'POST', '/apis/networking.istio.io/v1beta1/namespaces/default/virtualservices', obj);
  assert.equal(created.status, 201);
  assert.equal(created.body.apiVersion, 'networking.istio.io/v1beta1');
  const v1 = await call(s, 'GET', '/apis/networking.istio.io/v1/namespaces/default/virtualservices/web');
  assert.equal(v1.body.apiVersion, 'networking.istio.io/v1');
  assert.deepEqual(v1.body.spec.http, obj.spec.http, 'unknown fields are preserved');
  const list = await call(s, 'GET', '/apis/networking.istio.io/v1/virtualservices');
  assert.equal(list.body.kind, 'VirtualServiceList');

  const invalid = await call(s, 'POST', '/apis/networking.istio.io/v1/namespaces/default/virtualservices', { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'bad' }, spec: { mode: 'C' } });
  assert.equal(invalid.status, 422);
  const fields = invalid.body.details.causes.map((x: any) => x.field).sort();
  assert.deepEqual(fields, ['spec.hosts', 'spec.mode']);

  // Deleting the CRD stops serving it.
  await call(s, 'DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/virtualservices.networking.istio.io');
  assert.equal((await call(s, 'GET', '/apis/networking.istio.io/v1/namespaces/default/virtualservices')).status, 404);
});

test('TokenRequest issues a token that authenticates, and TokenReview reports it', async () => {
  const s = t.server;
  await call(s, 'POST', '/api/v1/namespaces', ns('tok'));
  await call(s, 'POST', '/api/v1/namespaces/tok/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'robot' } });
  const p = (await call(s, 'POST', '/api/v1/namespaces/tok/pods', { ...pod('tp'), spec: { ...pod('x').spec, serviceAccountName: 'robot' } })).body;
  const tr = await call(s, 'POST', '/api/v1/namespaces/tok/serviceaccounts/robot/token', {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
    spec: { expirationSeconds: 3607, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'tp', uid: p.metadata.uid } },
  });
  assert.equal(tr.status, 201);
  assert.equal(tr.body.kind, 'TokenRequest');
  const token = tr.body.status.token;
  assert.ok(tr.body.status.expirationTimestamp);
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  assert.equal(claims.sub, 'system:serviceaccount:tok:robot');
  assert.equal(claims['kubernetes.io'].pod.name, 'tp');

  // Authenticated (not 401), but RBAC grants the service account nothing yet.
  const asRobot = await call(s, 'GET', '/api/v1/namespaces/tok/pods', undefined, { token });
  assert.equal(asRobot.status, 403);
  assert.equal(asRobot.body.message, 'pods is forbidden: User "system:serviceaccount:tok:robot" cannot list resource "pods" in API group "" in the namespace "tok"');

  const review = await call(s, 'POST', '/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } });
  assert.equal(review.status, 201);
  assert.equal(review.body.status.authenticated, true);
  assert.equal(review.body.status.user.username, 'system:serviceaccount:tok:robot');
  assert.ok(review.body.status.user.groups.includes('system:serviceaccounts:tok'));

  // A token for another audience does not authenticate to the apiserver.
  const other = await call(s, 'POST', '/api/v1/namespaces/tok/serviceaccounts/robot/token', { spec: { audiences: ['istio-ca'] } });
  assert.equal((await call(s, 'GET', '/api/v1/namespaces/tok/pods', undefined, { token: other.body.status.token })).status, 401);
  const rv = await call(s, 'POST', '/apis/authentication.k8s.io/v1/tokenreviews', { spec: { token: other.body.status.token, audiences: ['istio-ca'] } });
  assert.equal(rv.body.status.authenticated, true);
  assert.deepEqual(rv.body.status.audiences, ['istio-ca']);

  // Deleting the bound pod (or the service account) invalidates the token.
  await call(s, 'DELETE', '/api/v1/namespaces/tok/pods/tp');
  assert.equal((await call(s, 'GET', '/api/v1/namespaces/tok/pods', undefined, { token })).status, 401);
  await call(s, 'DELETE', '/api/v1/namespaces/tok/serviceaccounts/robot');
  assert.equal((await call(s, 'GET', '/api/v1/namespaces/tok/pods', undefined, { token: other.body.status.token })).status, 401);
});

test('a mutating webhook (clientConfig.url over HTTPS) patches pods in selected namespaces', async () => {
  const s = t.server;
  const pki = path.join(t.dir, 'pki');
  const caCert = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
  const { certPem, keyPem } = issueServingCert(caCert, fs.readFileSync(path.join(pki, 'ca.key'), 'utf8'), { ips: ['127.0.0.1'], dnsNames: ['localhost'] }, 'webhook');
  const reviews: any[] = [];
  const hook = https.createServer({ cert: certPem, key: keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString());
      reviews.push(review);
      const patch = [
        { op: 'add', path: '/metadata/annotations', value: { injected: 'true' } },
        { op: 'add', path: '/spec/containers/-', value: { name: 'sidecar', image: 'trellis/proxyv2:0.1.0' } },
      ];
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') } }));
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  try {
    const port = (hook.address() as AddressInfo).port;
    const mwc = await call(s, 'POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'inject' },
      webhooks: [{
        name: 'inject.trellis.io', admissionReviewVersions: ['v1'], sideEffects: 'None',
        clientConfig: { url: `https://127.0.0.1:${port}/inject`, caBundle: Buffer.from(caCert).toString('base64') },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        namespaceSelector: { matchLabels: { 'istio-injection': 'enabled' } },
      }],
    });
    assert.equal(mwc.status, 201);
    assert.equal(mwc.body.webhooks[0].failurePolicy, 'Fail');
    await call(s, 'POST', '/api/v1/namespaces', ns('mesh', { 'istio-injection': 'enabled' }));
    await call(s, 'POST', '/api/v1/namespaces', ns('plain'));

    const injected = await call(s, 'POST', '/api/v1/namespaces/mesh/pods', pod('app'));
    assert.equal(injected.status, 201);
    assert.equal(injected.body.metadata.annotations.injected, 'true');
    assert.deepEqual(injected.body.spec.containers.map((c: any) => c.name), ['app', 'sidecar']);
    assert.equal(injected.body.spec.containers[1].imagePullPolicy, 'IfNotPresent', 'defaults apply to patched-in containers');
    assert.equal(reviews.length, 1);
    assert.equal(reviews[0].request.operation, 'CREATE');
    assert.equal(reviews[0].request.namespace, 'mesh');
    assert.equal(reviews[0].request.kind.kind, 'Pod');
    assert.ok(reviews[0].request.object.spec.volumes.some((v: any) => v.name.startsWith('kube-api-access-')), 'webhooks see the ServiceAccount volume');

    const plain = await call(s, 'POST', '/api/v1/namespaces/plain/pods', pod('app'));
    assert.deepEqual(plain.body.spec.containers.map((c: any) => c.name), ['app']);
    assert.equal(reviews.length, 1, 'namespaceSelector keeps other namespaces out');

    // failurePolicy Fail with an unreachable webhook rejects the request, naming the webhook.
    hook.close();
    hook.closeAllConnections();
    const failed = await call(s, 'POST', '/api/v1/namespaces/mesh/pods', pod('app2'));
    assert.equal(failed.status, 500);
    assert.match(failed.body.message, /failed calling webhook "inject.trellis.io"/);
    await call(s, 'DELETE', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/inject');
    assert.equal((await call(s, 'POST', '/api/v1/namespaces/mesh/pods', pod('app2'))).status, 201);
  } finally {
    hook.close();
  }
});

test('a validating webhook that denies makes the request fail with its message', async () => {
  const s = t.server;
  const pki = path.join(t.dir, 'pki');
  const caCert = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
  const { certPem, keyPem } = issueServingCert(caCert, fs.readFileSync(path.join(pki, 'ca.key'), 'utf8'), { ips: ['127.0.0.1'], dnsNames: [] }, 'vwh');
  const hook = https.createServer({ cert: certPem, key: keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString());
      res.end(JSON.stringify({ response: { uid: review.request.uid, allowed: false, status: { message: 'no thanks' } } }));
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  try {
    await call(s, 'POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'deny' },
      webhooks: [{ name: 'deny.trellis.io', admissionReviewVersions: ['v1'], sideEffects: 'None',
        clientConfig: { url: `https://127.0.0.1:${(hook.address() as AddressInfo).port}/`, caBundle: Buffer.from(caCert).toString('base64') },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'] }],
        objectSelector: { matchLabels: { deny: 'yes' } } }],
    });
    const denied = await call(s, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'd', labels: { deny: 'yes' } } });
    assert.equal(denied.status, 403);
    assert.match(denied.body.message, /admission webhook "deny.trellis.io" denied the request: no thanks/);
    const allowed = await call(s, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'd' } });
    assert.equal(allowed.status, 201);
  } finally {
    hook.close();
    await call(s, 'DELETE', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/deny');
  }
});

test('namespace deletion: Terminating until finalized; no new content meanwhile', async () => {
  const s = t.server;
  await call(s, 'POST', '/api/v1/namespaces', ns('gone'));
  const w = watch(s, '/api/v1/namespaces?watch=1&fieldSelector=metadata.name%3Dgone&resourceVersion=0');
  assert.equal((await w.next()).type, 'ADDED');
  const del = await call(s, 'DELETE', '/api/v1/namespaces/gone');
  assert.equal(del.body.status.phase, 'Terminating');
  const blocked = await call(s, 'POST', '/api/v1/namespaces/gone/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } });
  assert.equal(blocked.status, 403);
  const fin = await call(s, 'PUT', '/api/v1/namespaces/gone/finalize', { ...del.body, spec: { finalizers: [] } });
  assert.equal(fin.status, 200);
  assert.equal((await call(s, 'GET', '/api/v1/namespaces/gone')).status, 404);
  assert.equal((await w.next()).type, 'MODIFIED');
  assert.equal((await w.next()).type, 'DELETED');
  w.close();
});
