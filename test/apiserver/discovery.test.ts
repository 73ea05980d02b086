// Discovery in both forms: the legacy documents (/api, /apis, /api/v1, /apis/<g>/<v>) and
// aggregated discovery (apidiscovery.k8s.io v2 and v2beta1 on /api and /apis) must describe
// the same resources — verbs, shortNames, categories, scope, subresources — including a CRD
// right after it is created and not after it is deleted. The real kubectl then needs two requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { call, startTestServer, type TestServer } from './helpers.js';

let t: TestServer;
before(async () => { t = await startTestServer(); });
after(async () => { await t?.stop(); });

const accept = (v: string) => `application/json;g=apidiscovery.k8s.io;v=${v};as=APIGroupDiscoveryList,application/json`;

type Row = Record<string, unknown>;
const sorted = (x: unknown) => (Array.isArray(x) ? [...x].map(String).sort() : []);

/** Every resource and subresource as a comparable row, from the legacy documents. */
async function legacyRows(): Promise<{ rows: Row[]; preferred: Record<string, string> }> {
  const s = t.server;
  const gvs: string[] = ['v1'];
  const preferred: Record<string, string> = {};
  const apis = await call(s, 'GET', '/apis');
  for (const g of apis.body.groups) {
    preferred[g.name] = g.preferredVersion.version;
    for (const v of g.versions) gvs.push(v.groupVersion);
  }
  const rows: Row[] = [];
  for (const gv of gvs) {
    const doc = await call(s, 'GET', gv === 'v1' ? '/api/v1' : `/apis/${gv}`);
    assert.equal(doc.status, 200, `GET ${gv}`);
    const [group, version] = gv.includes('/') ? gv.split('/') : ['', gv];
    for (const r of doc.body.resources) {
      const [res, sub] = String(r.name).split('/');
      if (sub) {
        rows.push({ gv, res, sub, kind: `${r.group ?? group}/${r.version ?? version}/${r.kind}`, verbs: sorted(r.verbs) });
      } else {
        rows.push({ gv, res, kind: `${group}/${version}/${r.kind}`, namespaced: r.namespaced, singular: r.singularName, verbs: sorted(r.verbs), shortNames: sorted(r.shortNames), categories: sorted(r.categories) });
      }
    }
  }
  return { rows, preferred };
}

/** The same rows from aggregated discovery of one version. */
async function aggregatedRows(v: string): Promise<{ rows: Row[]; preferred: Record<string, string> }> {
  const rows: Row[] = [];
  const preferred: Record<string, string> = {};
  for (const p of ['/api', '/apis']) {
    const r = await call(t.server, 'GET', p, undefined, { accept: accept(v) });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], `application/json;g=apidiscovery.k8s.io;v=${v};as=APIGroupDiscoveryList`);
    assert.equal(r.body.kind, 'APIGroupDiscoveryList');
    assert.equal(r.body.apiVersion, `apidiscovery.k8s.io/${v}`);
    for (const g of r.body.items) {
      const group = g.metadata.name;
      assert.equal(group === '', p === '/api', `${p} lists group "${group}"`);
      if (group) preferred[group] = g.versions[0].version;
      for (const ver of g.versions) {
        assert.equal(ver.freshness, 'Current');
        const gv = group ? `${group}/${ver.version}` : ver.version;
        for (const res of ver.resources) {
          const rk = res.responseKind;
          rows.push({ gv, res: res.resource, kind: `${rk.group}/${rk.version}/${rk.kind}`, namespaced: res.scope === 'Namespaced', singular: res.singularResource, verbs: sorted(res.verbs), shortNames: sorted(res.shortNames), categories: sorted(res.categories) });
          assert.ok(['Namespaced', 'Cluster'].includes(res.scope));
          for (const sr of res.subresources ?? []) {
            const k = sr.responseKind;
            rows.push({ gv, res: res.resource, sub: sr.subresource, kind: `${k.group}/${k.version}/${k.kind}`, verbs: sorted(sr.verbs) });
          }
        }
      }
    }
  }
  return { rows, preferred };
}

const key = (r: Row) => `${String(r.gv)} ${String(r.res)} ${String(r.sub ?? '')}`;
const byKey = (rows: Row[]) => [...rows].sort((a, b) => key(a).localeCompare(key(b)));

async function assertSameDiscovery(): Promise<Row[]> {
  const legacy = await legacyRows();
  for (const v of ['v2', 'v2beta1']) {
    const agg = await aggregatedRows(v);
    assert.deepEqual(byKey(agg.rows), byKey(legacy.rows), `aggregated ${v} and legacy discovery agree`);
    assert.deepEqual(agg.preferred, legacy.preferred, `preferred versions agree (${v})`);
  }
  return legacy.rows;
}

const crd = {
  apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.example.com' },
  spec: {
    group: 'example.com', scope: 'Cluster',
    names: { plural: 'widgets', singular: 'widget', kind: 'Widget', shortNames: ['wd'], categories: ['all', 'gadgets'] },
    versions: [
      { name: 'v1beta1', served: true, storage: false, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } },
      { name: 'v1', served: true, storage: true, subresources: { status: {}, scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas' } },
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } },
    ],
  },
};

test('aggregated discovery (v2 and v2beta1) matches the legacy documents, for built-ins and a CRD from creation to deletion', async () => {
  const s = t.server;
  const before = await assertSameDiscovery();
  const deploy = before.find((r) => r.gv === 'apps/v1' && r.res === 'deployments' && !r.sub);
  assert.deepEqual(deploy, { gv: 'apps/v1', res: 'deployments', kind: 'apps/v1/Deployment', namespaced: true, singular: 'deployment', verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['deploy'], categories: ['all'] });
  assert.ok(before.some((r) => r.gv === 'apps/v1' && r.res === 'deployments' && r.sub === 'scale' && r.kind === 'autoscaling/v1/Scale'));
  assert.ok(before.some((r) => r.gv === 'v1' && r.res === 'namespaces' && !r.sub && r.namespaced === false));
  assert.ok(!before.some((r) => r.gv === 'example.com/v1'));

  // Without the aggregated media type in Accept, /apis stays the legacy APIGroupList.
  const plain = await call(s, 'GET', '/apis');
  assert.equal(plain.body.kind, 'APIGroupList');
  assert.match(String(plain.headers['content-type']), /^application\/json(;|$)/);
  assert.doesNotMatch(String(plain.headers['content-type']), /apidiscovery/);

  assert.equal((await call(s, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd)).status, 201);
  const withCrd = await assertSameDiscovery();
  const widget = withCrd.find((r) => r.gv === 'example.com/v1' && r.res === 'widgets' && !r.sub);
  assert.deepEqual(widget, { gv: 'example.com/v1', res: 'widgets', kind: 'example.com/v1/Widget', namespaced: false, singular: 'widget', verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['wd'], categories: ['all', 'gadgets'] });
  assert.ok(withCrd.some((r) => r.gv === 'example.com/v1' && r.res === 'widgets' && r.sub === 'status' && r.kind === 'example.com/v1/Widget'));
  assert.ok(withCrd.some((r) => r.gv === 'example.com/v1' && r.res === 'widgets' && r.sub === 'scale' && r.kind === 'autoscaling/v1/Scale'));
  assert.ok(withCrd.some((r) => r.gv === 'example.com/v1beta1' && r.res === 'widgets'));
  const agg = await call(s, 'GET', '/apis', undefined, { accept: accept('v2') });
  const group = agg.body.items.find((g: any) => g.metadata.name === 'example.com');
  assert.deepEqual(group.versions.map((v: any) => v.version), ['v1', 'v1beta1'], 'the preferred (GA) version comes first');

  assert.equal((await call(s, 'DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com')).status, 200);
  const after = await assertSameDiscovery();
  assert.ok(!after.some((r) => String(r.gv).startsWith('example.com/')), 'the deleted CRD is gone from both forms');
});

function findKubectl(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && fs.existsSync(path.join(dir, 'kubectl'))) return path.join(dir, 'kubectl');
  return undefined;
}
const kubectl = findKubectl();

test('kubectl discovers everything from /api and /apis alone (aggregated), with CRDs and categories', { skip: kubectl ? false : 'kubectl is not on PATH' }, async () => {
  assert.equal((await call(t.server, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd)).status, 201);
  try {
    const { stdout, stderr } = await promisify(execFile)(kubectl!, ['--kubeconfig', t.server.kubeconfigPath, '--cache-dir', path.join(t.dir, 'kube-cache'), 'api-resources', '-v=6'], { timeout: 30_000 });
    const requested = [...stderr.matchAll(/"GET" url="https:\/\/[^/]+([^"?]*)/g)].map((m) => m[1]);
    const fallback = [...stderr.matchAll(/GET https:\/\/[^/]+([^?\s]*)/g)].map((m) => m[1]);
    const paths = requested.length ? requested : fallback;
    assert.ok(paths.includes('/api') && paths.includes('/apis'), `kubectl asked for /api and /apis: ${paths.join(' ')}`);
    assert.deepEqual(paths.filter((p) => /^\/apis?\/.+/.test(p)), [], 'no per-group-version discovery request');
    assert.match(stdout, /^widgets\s+wd\s+example\.com\/v1\s+false\s+Widget$/m);
    assert.match(stdout, /^deployments\s+deploy\s+apps\/v1\s+true\s+Deployment$/m);
  } finally {
    await call(t.server, 'DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com');
  }
});

test('kubectl explain reads field types from the OpenAPI v3 schemas of built-in kinds and CRDs', { skip: kubectl ? false : 'kubectl is not on PATH' }, async () => {
  const thing = {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'things.example.com' },
    spec: {
      group: 'example.com', scope: 'Namespaced', names: { plural: 'things', kind: 'Thing' },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { size: { type: 'integer', description: 'How big the thing is.' } } } } } } }],
    },
  };
  assert.equal((await call(t.server, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', thing)).status, 201);
  const explain = async (what: string) => (await promisify(execFile)(kubectl!, ['--kubeconfig', t.server.kubeconfigPath, '--cache-dir', path.join(t.dir, 'kube-cache'), 'explain', what], { timeout: 30_000 })).stdout;
  try {
    const replicas = await explain('deployment.spec.replicas');
    assert.match(replicas, /^KIND:\s+Deployment$/m);
    assert.match(replicas, /^FIELD: replicas <integer>$/m);
    const ports = await explain('pods.spec.containers.ports');
    assert.match(ports, /^FIELD: ports <\[\]Object>$/m);
    assert.match(ports, /^\s+containerPort\s+<integer>$/m);
    const size = await explain('things.spec.size');
    assert.match(size, /^FIELD: size <integer>$/m);
    assert.match(size, /How big the thing is\./);
  } finally {
    await call(t.server, 'DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.example.com');
  }
});
