// Server-side field validation (fieldValidation=Strict|Warn|Ignore, Warn by default) for
// built-in kinds and custom resources, and CRD schema defaults applied on read. Then the real
// kubectl: its default `--validate=strict` makes a misspelled field fail, naming it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { call, describeStores, startTestServer, type TestServer } from './helpers.js';
import { dropUnknownFields, duplicateFields } from '../../cluster/apiserver/field-validation.js';
import { BUILTIN_SCHEMAS, OBJECT_META } from '../../cluster/apiserver/schemas/builtin.js';

const DEPLOYS = '/apis/apps/v1/namespaces/default/deployments';
const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

const deployment = (name: string) => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, labels: { app: name }, colour: 'red' },
  spec: {
    replicas: 1, foo: 'bar', selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'web', image: 'nginx', imagePullPolcy: 'Always' }] } },
  },
});
const UNKNOWN = ['metadata.colour', 'spec.foo', 'spec.template.spec.containers[0].imagePullPolcy'];
const warnings = (h: Record<string, string | string[] | undefined>): string[] => {
  const w = h.warning;
  // Node joins repeated Warning headers with ", ": take each `299 - "<text>"` apart.
  return (Array.isArray(w) ? w : w ? [w] : []).flatMap((x) => [...x.matchAll(/299 - ("(?:[^"\\]|\\.)*")/g)].map((m) => JSON.parse(m[1]) as string));
};

const gadgetCrd = (defaults: boolean) => ({
  apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'gadgets.example.com' },
  spec: {
    group: 'example.com', scope: 'Namespaced', names: { plural: 'gadgets', kind: 'Gadget' },
    versions: [{
      name: 'v1', served: true, storage: true,
      schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: {
        size: { type: 'integer' },
        colour: { type: 'string', ...(defaults ? { default: 'blue' } : {}) },
        extra: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      } } } } },
    }],
  },
});
const GADGETS = '/apis/example.com/v1/namespaces/default/gadgets';

describeStores('Field validation', (kind) => {
  let t: TestServer;
  before(async () => { t = await startTestServer({ store: kind }); });
  after(async () => { await t?.stop(); });

  test('unknown fields of a built-in kind: Strict refuses (400 naming each), Warn warns, Ignore drops silently; none is stored', async () => {
    const s = t.server;
    const strict = await call(s, 'POST', `${DEPLOYS}?fieldValidation=Strict`, deployment('strict'));
    assert.equal(strict.status, 400);
    assert.equal(strict.body.reason, 'BadRequest');
    assert.equal(strict.body.message, `Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: ${UNKNOWN.map((f) => `unknown field "${f}"`).join(', ')}`);
    assert.equal((await call(s, 'GET', `${DEPLOYS}/strict`)).status, 404);

    for (const [name, query] of [['warned', '?fieldValidation=Warn'], ['defaulted', '']] as const) {
      const r = await call(s, 'POST', `${DEPLOYS}${query}`, deployment(name));
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.deepEqual(warnings(r.headers).sort(), UNKNOWN.map((f) => `unknown field "${f}"`).sort(), `warnings (${query || 'no fieldValidation'})`);
      assert.equal(r.body.spec.foo, undefined);
      assert.equal(r.body.spec.template.spec.containers[0].imagePullPolcy, undefined);
      assert.equal(r.body.metadata.colour, undefined);
    }
    const ignored = await call(s, 'POST', `${DEPLOYS}?fieldValidation=Ignore`, deployment('ignored'));
    assert.equal(ignored.status, 201);
    assert.deepEqual(warnings(ignored.headers), []);
    const stored = (await call(s, 'GET', `${DEPLOYS}/ignored`)).body;
    assert.equal(stored.spec.foo, undefined, 'unknown fields are never stored');
    assert.equal(stored.spec.template.spec.containers[0].image, 'nginx', 'known fields are');

    // A known-field-only PUT passes Strict; one with an unknown field does not.
    const good = { ...stored, spec: { ...stored.spec, replicas: 2 } };
    assert.equal((await call(s, 'PUT', `${DEPLOYS}/ignored?fieldValidation=Strict`, good)).status, 200);
    const badPut = await call(s, 'PUT', `${DEPLOYS}/ignored?fieldValidation=Strict`, { ...good, metadata: { ...good.metadata, resourceVersion: undefined }, spec: { ...good.spec, paused: false, pausd: true } });
    assert.equal(badPut.status, 400);
    assert.match(badPut.body.message, /strict decoding error: unknown field "spec.pausd"$/);

    assert.equal((await call(s, 'POST', `${DEPLOYS}?fieldValidation=strictly`, deployment('x'))).body.message,
      'fieldValidation: Unsupported value: "strictly": supported values: "Ignore", "Strict", "Warn"');
  });

  test('duplicate fields in a JSON body, and unknown fields in patches (merge, strategic, server-side apply)', async () => {
    const s = t.server;
    const cm = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup"},"data":{"a":"1","a":"2"}}';
    const strict = await call(s, 'POST', '/api/v1/namespaces/default/configmaps?fieldValidation=Strict', cm);
    assert.equal(strict.status, 400);
    assert.equal(strict.body.message, 'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "metadata.name", duplicate field "data.a"');
    const warned = await call(s, 'POST', '/api/v1/namespaces/default/configmaps?fieldValidation=Warn', cm);
    assert.equal(warned.status, 201);
    assert.deepEqual(warnings(warned.headers), ['duplicate field "metadata.name"', 'duplicate field "data.a"']);
    assert.equal(warned.body.data.a, '2', 'the last value wins');

    assert.equal((await call(s, 'POST', DEPLOYS, deployment('patched'))).status, 201);
    const merge = await call(s, 'PATCH', `${DEPLOYS}/patched?fieldValidation=Strict`, { spec: { replicas: 3, replica: 4 } }, { contentType: 'application/merge-patch+json' });
    assert.equal(merge.status, 400);
    assert.equal(merge.body.message, 'strict decoding error: unknown field "spec.replica"');
    const smp = await call(s, 'PATCH', `${DEPLOYS}/patched?fieldValidation=Warn`, { spec: { template: { spec: { containers: [{ name: 'web', imagePullPolicy: 'Never', imagePullPolcy: 'Never' }] } } } }, { contentType: 'application/strategic-merge-patch+json' });
    assert.equal(smp.status, 200);
    assert.deepEqual(warnings(smp.headers), ['unknown field "spec.template.spec.containers[0].imagePullPolcy"']);
    assert.equal(smp.body.spec.template.spec.containers[0].imagePullPolicy, 'Never');
    const ok = await call(s, 'PATCH', `${DEPLOYS}/patched?fieldValidation=Strict`, { spec: { replicas: 3 } }, { contentType: 'application/merge-patch+json' });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.spec.replicas, 3);

    const apply = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'applied' }, spec: { selector: { matchLabels: { app: 'a' } }, replica: 2, template: { metadata: { labels: { app: 'a' } }, spec: { containers: [{ name: 'a', image: 'a' }] } } } };
    const ssa = await call(s, 'PATCH', `${DEPLOYS}/applied?fieldManager=test&fieldValidation=Strict`, apply, { contentType: 'application/apply-patch+yaml' });
    assert.equal(ssa.status, 400);
    assert.equal(ssa.body.message, 'failed to create typed patch object (default/applied; apps/v1, Kind=Deployment): .spec.replica: field not declared in schema');
  });

  test('custom resources: unknown fields by the structural schema (preserved subtrees exempt); schema defaults also on read', async () => {
    const s = t.server;
    assert.equal((await call(s, 'POST', CRDS, gadgetCrd(false))).status, 201);
    const g = (name: string) => ({ apiVersion: 'example.com/v1', kind: 'Gadget', metadata: { name, flavour: 'x' }, spec: { size: 1, sise: 2, extra: { anything: true } }, top: 1 });
    const strict = await call(s, 'POST', `${GADGETS}?fieldValidation=Strict`, g('strict'));
    assert.equal(strict.status, 400);
    assert.equal(strict.body.message, 'Gadget in version "v1" cannot be handled as a Gadget: strict decoding error: unknown field "metadata.flavour", unknown field "spec.sise", unknown field "top"');
    const warned = await call(s, 'POST', `${GADGETS}?fieldValidation=Warn`, g('old'));
    assert.equal(warned.status, 201);
    assert.deepEqual(warnings(warned.headers), ['unknown field "metadata.flavour"', 'unknown field "spec.sise"', 'unknown field "top"']);
    assert.deepEqual(warned.body.spec, { size: 1, extra: { anything: true } }, 'pruned, the preserved subtree kept');
    const ignored = await call(s, 'POST', `${GADGETS}?fieldValidation=Ignore`, g('ignored'));
    assert.equal(ignored.status, 201);
    assert.deepEqual(warnings(ignored.headers), []);
    assert.equal(ignored.body.top, undefined);

    // A default added to the CRD later shows on the object stored before it: get, list, watch.
    const crd = (await call(s, 'GET', `${CRDS}/gadgets.example.com`)).body;
    const updated = gadgetCrd(true);
    assert.equal((await call(s, 'PUT', `${CRDS}/gadgets.example.com`, { ...updated, metadata: crd.metadata })).status, 200);
    assert.equal((await call(s, 'GET', `${GADGETS}/old`)).body.spec.colour, 'blue');
    const list = (await call(s, 'GET', GADGETS)).body;
    assert.deepEqual(list.items.map((x: any) => x.spec.colour), ['blue', 'blue']);
    const explicit = await call(s, 'POST', GADGETS, { apiVersion: 'example.com/v1', kind: 'Gadget', metadata: { name: 'green' }, spec: { colour: 'green' } });
    assert.equal(explicit.body.spec.colour, 'green', 'a value sent is not replaced by the default');
    const w = await call(s, 'GET', `${GADGETS}?watch=true&resourceVersion=0&timeoutSeconds=1`);
    const events = String(w.body).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(events.map((e) => [e.object.metadata.name, e.object.spec.colour]).sort(), [['green', 'green'], ['ignored', 'blue'], ['old', 'blue']]);
    // A patch sees the defaulted object, and the write stores the default.
    const p = await call(s, 'PATCH', `${GADGETS}/old`, { spec: { size: 5 } }, { contentType: 'application/merge-patch+json' });
    assert.deepEqual(p.body.spec, { size: 5, colour: 'blue', extra: { anything: true } });
  });
});

test('every built-in object in install/ and samples/ has only known fields', () => {
  const roots = ['install', 'samples'].map((d) => path.resolve(import.meta.dirname, '../../..', d));
  let checked = 0;
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) { walk(f); continue; }
      if (!/\.ya?ml$/.test(e.name)) continue;
      for (const doc of parseAllDocuments(fs.readFileSync(f, 'utf8'))) {
        const o = doc.toJSON() as { apiVersion?: string; kind?: string } | null;
        if (!o?.kind || !o.apiVersion) continue;
        const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
        const schema = BUILTIN_SCHEMAS[`${group}/${o.kind}`];
        if (!schema) continue;
        assert.deepEqual(dropUnknownFields(schema, o, OBJECT_META), [], `${f}: ${o.kind}`);
        checked++;
      }
    }
  };
  roots.forEach(walk);
  assert.ok(checked >= 10, `checked ${checked} objects`);
});

test('duplicate keys are found at every depth, in arrays too, and strings with escapes do not confuse the scan', () => {
  assert.deepEqual(duplicateFields('{"a":1,"b":{"c":"x\\"}","c":[{"d":1,"d":2}]},"a":3}'), ['b.c', 'b.c[0].d', 'a']);
  assert.deepEqual(duplicateFields('{"a":[1,2,{"b":{}}],"c":"{\\"a\\":1,\\"a\\":2}"}'), []);
});

function findKubectl(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && fs.existsSync(path.join(dir, 'kubectl'))) return path.join(dir, 'kubectl');
  return undefined;
}
const kubectlPath = findKubectl();

test('kubectl apply of a misspelled Deployment fails naming the field; --validate=warn warns; --validate=false drops it', { skip: kubectlPath ? false : 'kubectl is not on PATH' }, async () => {
  const t = await startTestServer();
  try {
    const file = path.join(t.dir, 'web.yaml');
    fs.writeFileSync(file, `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: nginx, imagePullPolcy: Always}
`);
    const kubectl = (...a: string[]) => promisify(execFile)(kubectlPath!, ['--kubeconfig', t.server.kubeconfigPath, '--cache-dir', path.join(t.dir, 'kube-cache'), ...a], { timeout: 30_000 });
    const failed = await kubectl('apply', '-f', file).then(() => undefined, (e: { stderr: string }) => e.stderr);
    assert.match(failed ?? 'it succeeded', /Error from server \(BadRequest\): error when creating ".*web.yaml": Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.template.spec.containers\[0\].imagePullPolcy"/);
    assert.equal((await call(t.server, 'GET', `${DEPLOYS}/web`)).status, 404);
    const warned = await kubectl('apply', '--validate=warn', '-f', file);
    assert.match(warned.stderr, /Warning: unknown field "spec.template.spec.containers\[0\].imagePullPolcy"/);
    assert.match(warned.stdout, /deployment.apps\/web created/);
    await kubectl('delete', 'deployment', 'web');
    const quiet = await kubectl('apply', '--validate=false', '-f', file);
    assert.match(quiet.stdout, /deployment.apps\/web created/);
    assert.doesNotMatch(quiet.stderr, /Warning/);
    const stored = (await call(t.server, 'GET', `${DEPLOYS}/web`)).body;
    assert.equal(stored.spec.template.spec.containers[0].imagePullPolcy, undefined);
    assert.equal(stored.spec.template.spec.containers[0].image, 'nginx');
  } finally {
    await t.stop();
  }
});
