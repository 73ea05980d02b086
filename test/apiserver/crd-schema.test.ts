// CustomResourceDefinition schemas: structural checks when the CRD is written (422 with field
// paths), pruning of unknown fields, defaulting, validation on create and update, and the
// status and scale subresources of a custom resource.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestServer, type TestServer } from './helpers.js';

let t: TestServer;
before(async () => { t = await startTestServer({ memory: true }); });
after(async () => { await t?.stop(); });

const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
const crd = (openAPIV3Schema: unknown, name = 'widgets', extra: Record<string, unknown> = {}) => ({
  apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: `${name}.example.com` },
  spec: {
    group: 'example.com', scope: 'Namespaced', names: { plural: name, kind: name[0].toUpperCase() + name.slice(1, -1) },
    versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema }, ...extra }],
  },
});

const widgetSchema = {
  type: 'object',
  properties: {
    spec: {
      type: 'object', required: ['name'],
      properties: {
        name: { type: 'string', pattern: '^[a-z]+$', maxLength: 10 },
        replicas: { type: 'integer', default: 1, minimum: 0, maximum: 10 },
        mode: { type: 'string', enum: ['fast', 'slow'], default: 'fast' },
        tags: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 3 },
        owner: { type: 'string', format: 'email' },
        limits: { type: 'object', default: {}, properties: { cpu: { type: 'string', default: '100m' }, memory: { type: 'string' } } },
        ports: { type: 'array', items: { type: 'object', properties: { port: { type: 'integer' }, protocol: { type: 'string', default: 'TCP' } } } },
        free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        size: { 'x-kubernetes-int-or-string': true },
      },
    },
    status: { type: 'object', properties: { replicas: { type: 'integer' }, ready: { type: 'boolean' } } },
  },
};

test('a CRD whose schema is not structural is refused with 422 naming each field', async () => {
  const s = t.server;
  const bad = await call(s, 'POST', CRDS, crd({
    type: 'object',
    properties: {
      metadata: { type: 'object', properties: { labels: { type: 'object' } } },
      spec: { properties: { a: { type: 'string' } } },
      list: { type: 'array' },
      strict: { type: 'object', additionalProperties: false },
      odd: { type: 'strange' },
      n: { type: 'integer', default: 'x' },
      re: { type: 'string', pattern: '([' },
    },
  }, 'gadgets'));
  assert.equal(bad.status, 422, JSON.stringify(bad.body));
  assert.equal(bad.body.reason, 'Invalid');
  const at = 'spec.versions[0].schema.openAPIV3Schema';
  const fields = bad.body.details.causes.map((c: any) => c.field);
  for (const f of [`${at}.properties[metadata]`, `${at}.properties[spec].type`, `${at}.properties[list].items`, `${at}.properties[strict].additionalProperties`,
    `${at}.properties[odd].type`, `${at}.properties[n].default`, `${at}.properties[re].pattern`]) assert.ok(fields.includes(f), `${f} in ${JSON.stringify(fields)}`);
  const noSchema = await call(s, 'POST', CRDS, { ...crd({}, 'gizmos'), spec: { ...crd({}, 'gizmos').spec, versions: [{ name: 'v1', served: true, storage: true }] } });
  assert.equal(noSchema.status, 422);
  assert.match(noSchema.body.message, /spec\.versions\[0\]\.schema\.openAPIV3Schema: Required value: schemas are required/);
  assert.equal((await call(s, 'POST', CRDS, crd({ type: 'string' }, 'doodads'))).status, 422, 'the root must be an object');
});

test('custom objects are pruned, defaulted and validated on create and update', async () => {
  const s = t.server;
  assert.equal((await call(s, 'POST', CRDS, crd(widgetSchema, 'widgets', { subresources: { status: {}, scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas' } } }))).status, 201);
  const base = '/apis/example.com/v1/namespaces/default/widgets';
  const c = await call(s, 'POST', base, {
    apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w1' }, unknownTop: 1,
    spec: { name: 'abc', extra: 'gone', ports: [{ port: 80, junk: true }], free: { any: { thing: [1] } }, size: '50%' },
  });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const w = c.body;
  assert.equal(w.unknownTop, undefined, 'unknown top-level field pruned');
  assert.equal(w.spec.extra, undefined, 'unknown spec field pruned');
  assert.deepEqual(w.spec.ports, [{ port: 80, protocol: 'TCP' }], 'pruned and defaulted inside arrays');
  assert.deepEqual(w.spec.free, { any: { thing: [1] } }, 'x-kubernetes-preserve-unknown-fields keeps everything');
  assert.equal(w.spec.replicas, 1);
  assert.equal(w.spec.mode, 'fast');
  assert.deepEqual(w.spec.limits, { cpu: '100m' }, 'an object default, then the defaults inside it');
  assert.equal(w.spec.size, '50%');
  assert.equal((await call(s, 'GET', `${base}/w1`)).body.spec.extra, undefined, 'stored pruned');

  const bad = await call(s, 'POST', base, {
    apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w2' },
    spec: { name: 'ABC', replicas: 11, mode: 'medium', tags: [], owner: 'nobody', size: 1.5 },
  });
  assert.equal(bad.status, 422);
  const byField = Object.fromEntries(bad.body.details.causes.map((x: any) => [x.field, x.message]));
  assert.match(byField['spec.name'], /spec\.name in body should match '\^\[a-z\]\+\$'/);
  assert.match(byField['spec.replicas'], /Invalid value: 11: spec\.replicas in body should be less than or equal to 10/);
  assert.match(byField['spec.mode'], /Unsupported value: "medium": supported values: "fast", "slow"/);
  assert.match(byField['spec.tags'], /should have at least 1 items/);
  assert.match(byField['spec.owner'], /must be of type email/);
  assert.ok(byField['spec.size'], 'int-or-string refuses a fraction');
  assert.match(bad.body.message, /^Widget\.example\.com "w2" is invalid: |^Widget "w2" is invalid: /);

  const missing = await call(s, 'POST', base, { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w3' }, spec: { replicas: -1, tags: ['a', 'b', 'c', 'd'], name: 'x'.repeat(11) } });
  const f3 = Object.fromEntries(missing.body.details.causes.map((x: any) => [x.field, x.message]));
  assert.match(f3['spec.replicas'], /should be greater than or equal to 0/);
  assert.match(f3['spec.tags'], /Too many: 4: must have at most 3 items/);
  assert.match(f3['spec.name'], /Too long: may not be longer than 10/);
  assert.equal((await call(s, 'POST', base, { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w4' }, spec: {} })).body.details.causes[0].field, 'spec.name');

  // Updates are validated the same way; a valid update is pruned and defaulted too.
  const cur = (await call(s, 'GET', `${base}/w1`)).body;
  assert.equal((await call(s, 'PUT', `${base}/w1`, { ...cur, spec: { ...cur.spec, replicas: 'three' } })).status, 422);
  const merged = await call(s, 'PATCH', `${base}/w1`, { spec: { mode: null, bogus: 1 } }, { contentType: 'application/merge-patch+json' });
  assert.equal(merged.status, 200, JSON.stringify(merged.body));
  assert.equal(merged.body.spec.mode, 'fast', 'a removed field gets its default again');
  assert.equal(merged.body.spec.bogus, undefined);
});

test('status and scale subresources of a custom resource', async () => {
  const s = t.server;
  const base = '/apis/example.com/v1/namespaces/default/widgets';
  const w = (await call(s, 'GET', `${base}/w1`)).body;
  assert.equal(w.metadata.generation, 1);
  // The main resource ignores status; /status ignores everything but status.
  const put = await call(s, 'PUT', `${base}/w1`, { ...w, spec: { ...w.spec, replicas: 2 }, status: { replicas: 9 } });
  assert.equal(put.status, 200);
  assert.equal(put.body.spec.replicas, 2);
  assert.equal(put.body.status, undefined, 'status written through the main resource is ignored');
  assert.equal(put.body.metadata.generation, 2, 'a spec change bumps generation');
  const st = await call(s, 'PUT', `${base}/w1/status`, { ...put.body, spec: { ...put.body.spec, replicas: 7 }, status: { replicas: 2, ready: true, junk: 'x' } });
  assert.equal(st.status, 200, JSON.stringify(st.body));
  assert.deepEqual(st.body.status, { replicas: 2, ready: true }, 'status is pruned too');
  assert.equal(st.body.spec.replicas, 2, 'spec written through /status is ignored');
  assert.equal(st.body.metadata.generation, 2, 'a status write does not bump generation');
  assert.equal((await call(s, 'PATCH', `${base}/w1/status`, { status: { ready: 'yes' } }, { contentType: 'application/merge-patch+json' })).status, 422, 'status is validated');

  const scale = await call(s, 'GET', `${base}/w1/scale`);
  assert.equal(scale.status, 200);
  assert.equal(scale.body.kind, 'Scale');
  assert.deepEqual([scale.body.spec.replicas, scale.body.status.replicas], [2, 2]);
  const up = await call(s, 'PATCH', `${base}/w1/scale`, { spec: { replicas: 5 } }, { contentType: 'application/merge-patch+json' });
  assert.equal(up.status, 200, JSON.stringify(up.body));
  assert.equal((await call(s, 'GET', `${base}/w1`)).body.spec.replicas, 5);
  assert.equal((await call(s, 'PATCH', `${base}/w1/scale`, { spec: { replicas: 50 } }, { contentType: 'application/merge-patch+json' })).status, 422, 'the schema maximum applies through /scale');
});
