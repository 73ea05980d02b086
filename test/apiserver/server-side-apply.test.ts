// Server-side apply field ownership: managedFields, conflicts between managers, force,
// takeover by non-apply writes, pruning of omitted fields, merge-keyed lists; and the real
// kubectl's `apply --server-side` / `scale` / `--force-conflicts` against it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { call, startTestServer, type TestServer } from './helpers.js';

const DEPLOYS = '/apis/apps/v1/namespaces/default/deployments';
const APPLY = { contentType: 'application/apply-patch+yaml' };

let t: TestServer;
before(async () => { t = await startTestServer(); });
after(async () => { await t?.stop(); });

const deploy = (name: string, spec: Record<string, unknown>, containers = [{ name: 'app', image: 'trellis/sample-http:0.1.0' }]) => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name },
  spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers } }, ...spec },
});

const apply = (name: string, body: unknown, manager: string, force = false) =>
  call(t.server, 'PATCH', `${DEPLOYS}/${name}?fieldManager=${manager}${force ? '&force=true' : ''}`, JSON.stringify(body), APPLY);

function entry(obj: any, manager: string, operation: string): any {
  return (obj.metadata.managedFields ?? []).find((e: any) => e.manager === manager && e.operation === operation);
}

test('apply requires a fieldManager, creates the object and records an Apply entry in FieldsV1', async () => {
  const s = t.server;
  const missing = await call(s, 'PATCH', `${DEPLOYS}/a1`, JSON.stringify(deploy('a1', { replicas: 2 })), APPLY);
  assert.equal(missing.status, 400);
  assert.match(missing.body.message, /fieldManager/);
  const r = await apply('a1', deploy('a1', { replicas: 2 }), 'alice');
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const e = entry(r.body, 'alice', 'Apply');
  assert.equal(e.apiVersion, 'apps/v1');
  assert.equal(e.fieldsType, 'FieldsV1');
  assert.match(e.time, /^\d{4}-\d\d-\d\dT/);
  assert.deepEqual(e.fieldsV1['f:spec']['f:replicas'], {});
  assert.deepEqual(e.fieldsV1['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"app"}'], { '.': {}, 'f:name': {}, 'f:image': {} });
  assert.equal(e.fieldsV1['f:status'], undefined, 'status is not owned through the main resource');
  const got = await call(s, 'GET', `${DEPLOYS}/a1`);
  assert.deepEqual(entry(got.body, 'alice', 'Apply').fieldsV1, e.fieldsV1, 'stored with the object');
});

test('a second manager changing an owned field conflicts (409 with causes); the same value is shared; force takes it over', async () => {
  await apply('a2', deploy('a2', { replicas: 2 }), 'alice');
  const c = await apply('a2', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'a2' }, spec: { replicas: 3 } }, 'bob');
  assert.equal(c.status, 409);
  assert.equal(c.body.reason, 'Conflict');
  assert.equal(c.body.message, 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas');
  assert.deepEqual(c.body.details.causes.map((x: any) => [x.type, x.field]), [['FieldManagerConflict', '.spec.replicas']]);

  const shared = await apply('a2', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'a2' }, spec: { replicas: 2 } }, 'carol');
  assert.equal(shared.status, 200, JSON.stringify(shared.body));
  assert.ok(entry(shared.body, 'alice', 'Apply').fieldsV1['f:spec']['f:replicas']);
  assert.ok(entry(shared.body, 'carol', 'Apply').fieldsV1['f:spec']['f:replicas']);

  const forced = await apply('a2', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'a2' }, spec: { replicas: 3 } }, 'bob', true);
  assert.equal(forced.status, 200, JSON.stringify(forced.body));
  assert.equal(forced.body.spec.replicas, 3);
  assert.deepEqual(entry(forced.body, 'bob', 'Apply').fieldsV1, { 'f:spec': { 'f:replicas': {} } });
  assert.equal(entry(forced.body, 'alice', 'Apply').fieldsV1['f:spec']['f:replicas'], undefined);
  assert.equal(entry(forced.body, 'carol', 'Apply'), undefined, 'carol owned only replicas: her entry is gone');
});

test('a non-apply write takes the fields it changes: the original applier then conflicts with it', async () => {
  const s = t.server;
  await apply('a3', deploy('a3', { replicas: 2 }), 'alice');
  const p = await call(s, 'PATCH', `${DEPLOYS}/a3/scale?fieldManager=scaler`, { spec: { replicas: 5 } }, { contentType: 'application/merge-patch+json' });
  assert.equal(p.status, 200, JSON.stringify(p.body));
  const got = (await call(s, 'GET', `${DEPLOYS}/a3`)).body;
  assert.deepEqual(entry(got, 'scaler', 'Update').fieldsV1, { 'f:spec': { 'f:replicas': {} } });
  assert.equal(entry(got, 'alice', 'Apply').fieldsV1['f:spec']['f:replicas'], undefined);
  const c = await apply('a3', deploy('a3', { replicas: 2 }), 'alice');
  assert.equal(c.status, 409);
  assert.equal(c.body.message, 'Apply failed with 1 conflict: conflict with "scaler" using apps/v1: .spec.replicas');
  // Re-applying the live value is no conflict.
  assert.equal((await apply('a3', deploy('a3', { replicas: 5 }), 'alice')).status, 200);

  // A client's managedFields are ignored: the server keeps its own.
  const put = { ...got, spec: { ...got.spec, replicas: 7 }, metadata: { ...got.metadata, managedFields: [{ manager: 'forged', operation: 'Bogus' }] } };
  delete put.metadata.resourceVersion;
  const u = await call(s, 'PUT', `${DEPLOYS}/a3?fieldManager=editor`, put);
  assert.equal(u.status, 200, JSON.stringify(u.body));
  assert.equal(u.body.metadata.managedFields.some((e: any) => e.manager === 'forged'), false);
  assert.ok(u.body.metadata.managedFields.every((e: any) => e.fieldsType === 'FieldsV1' && e.fieldsV1));
  const writer = u.body.metadata.managedFields.filter((e: any) => e.fieldsV1['f:spec']?.['f:replicas']);
  assert.deepEqual(writer.map((e: any) => [e.manager, e.operation]), [['editor', 'Update']], 'the PUT took .spec.replicas');
});

test('a field dropped from the applied configuration is removed unless another manager owns it', async () => {
  const s = t.server;
  const withLabel = deploy('a4', { replicas: 2, minReadySeconds: 4 });
  (withLabel.metadata as any).labels = { team: 'a', keep: 'yes' };
  await apply('a4', withLabel, 'alice');
  // bob shares `keep` by applying the same value.
  assert.equal((await apply('a4', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'a4', labels: { keep: 'yes' } } }, 'bob')).status, 200);
  const r = await apply('a4', deploy('a4', { replicas: 2 }), 'alice');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.spec.minReadySeconds, undefined);
  assert.equal(r.body.metadata.labels?.team, undefined);
  assert.equal(r.body.metadata.labels?.keep, 'yes', 'still owned by bob');
  const got = (await call(s, 'GET', `${DEPLOYS}/a4`)).body;
  assert.equal(got.spec.minReadySeconds, undefined);
});

test('merge-keyed lists: two managers each own their own container', async () => {
  await apply('a5', deploy('a5', { replicas: 1 }, [{ name: 'app', image: 'trellis/sample-http:0.1.0' }]), 'alice');
  const side = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'a5' }, spec: { template: { spec: { containers: [{ name: 'side', image: 'trellis/sidecar:1' }] } } } };
  const r = await apply('a5', side, 'bob');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.spec.template.spec.containers.map((c: any) => c.name), ['app', 'side']);
  const bobs = entry(r.body, 'bob', 'Apply').fieldsV1['f:spec']['f:template']['f:spec']['f:containers'];
  assert.deepEqual(Object.keys(bobs), ['k:{"name":"side"}']);
  // bob changing alice's container's image conflicts on that container's field only.
  const c = await apply('a5', { ...side, spec: { template: { spec: { containers: [{ name: 'side', image: 'trellis/sidecar:1' }, { name: 'app', image: 'other:2' }] } } } }, 'bob');
  assert.equal(c.status, 409);
  assert.deepEqual(c.body.details.causes.map((x: any) => x.field), ['.spec.template.spec.containers[name="app"].image']);
  // bob dropping his container removes it; alice's stays.
  const gone = await apply('a5', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'a5' }, spec: { replicas: 1 } }, 'bob');
  assert.equal(gone.status, 200, JSON.stringify(gone.body));
  assert.deepEqual(gone.body.spec.template.spec.containers.map((c: any) => c.name), ['app']);
});

// ---- the real kubectl ---------------------------------------------------------------

const run = promisify(execFile);
const kubectlPath = (process.env.PATH ?? '').split(':').map((d) => path.join(d, 'kubectl')).find((p) => p !== 'kubectl' && fs.existsSync(p));

test('kubectl: apply --server-side, scale, a conflicting apply fails, --force-conflicts takes over', { skip: kubectlPath ? false : 'kubectl is not on PATH' }, async () => {
  const base = ['--kubeconfig', t.server.kubeconfigPath, '--cache-dir', path.join(t.dir, 'kube-cache')];
  const kubectl = async (...a: string[]) => (await run(kubectlPath!, [...base, ...a], { timeout: 30_000 })).stdout;
  const file = path.join(t.dir, 'ssa-web.yaml');
  const manifest = (replicas: number) => `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: trellis/sample-http:0.1.0}]
`;
  fs.writeFileSync(file, manifest(2));
  assert.match(await kubectl('apply', '--server-side', '-f', file), /deployment.apps\/web serverside-applied/);
  assert.match(await kubectl('scale', 'deployment/web', '--replicas', '5'), /scaled/);
  fs.writeFileSync(file, manifest(3));
  let out = '';
  try { await kubectl('apply', '--server-side', '-f', file); } catch (e) { out = `${(e as { stdout?: string }).stdout ?? ''}${(e as { stderr?: string }).stderr ?? ''}`; }
  // kubectl scale sends no fieldManager: its manager is the User-Agent's first component.
  assert.match(out, /Apply failed with 1 conflict: conflict with "kubectl[^"]*" using apps\/v1: \.spec\.replicas/);
  assert.match(await kubectl('apply', '--server-side', '--force-conflicts', '-f', file), /serverside-applied/);
  const hidden = await kubectl('get', 'deployment', 'web', '-o', 'yaml');
  assert.doesNotMatch(hidden, /managedFields/);
  const shown = await kubectl('get', 'deployment', 'web', '-o', 'yaml', '--show-managed-fields');
  assert.match(shown, /managedFields:/);
  assert.match(shown, /manager: kubectl\n\s+operation: Apply/);
  assert.match(shown, /replicas: 3/);
});
