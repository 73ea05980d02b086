// RBAC through real HTTPS: service account users, Roles/ClusterRoles and their bindings,
// subresources, resourceNames, nonResourceURLs, bootstrap roles, access reviews, and the
// mesh's own install/02-rbac.yaml against what pilot and the injector call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { call, ns, pod, startTestServer, watch, type TestServer } from './helpers.js';
import { ruleAllows } from '../../cluster/apiserver/rbac/rules.js';
import type { Attributes } from '../../cluster/apiserver/authz.js';

let t: TestServer;
before(async () => { t = await startTestServer({ memory: true }); });
after(async () => { await t?.stop(); });

const RBAC = '/apis/rbac.authorization.k8s.io/v1';

async function saToken(namespace: string, name: string): Promise<string> {
  const s = t.server;
  await call(s, 'POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
  const tr = await call(s, 'POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, { spec: { expirationSeconds: 3600 } });
  assert.equal(tr.status, 201, JSON.stringify(tr.body));
  return tr.body.status.token;
}

async function create(p: string, body: unknown): Promise<any> {
  const r = await call(t.server, 'POST', p, body);
  assert.equal(r.status, 201, `POST ${p}: ${JSON.stringify(r.body)}`);
  return r.body;
}

const attrs = (a: Partial<Attributes>): Attributes => ({ verb: 'get', apiGroup: '', apiVersion: 'v1', resource: 'pods', subresource: '', namespace: 'x', name: '', resourceRequest: true, path: '', ...a });

test('rule matching: wildcards, subresources, */status, resourceNames, nonResourceURLs', () => {
  assert.ok(ruleAllows(attrs({}), { verbs: ['get'], apiGroups: [''], resources: ['pods'] }));
  assert.ok(!ruleAllows(attrs({ subresource: 'status' }), { verbs: ['get'], apiGroups: [''], resources: ['pods'] }), 'pods does not grant pods/status');
  assert.ok(ruleAllows(attrs({ subresource: 'status' }), { verbs: ['get'], apiGroups: [''], resources: ['pods/status'] }));
  assert.ok(ruleAllows(attrs({ apiGroup: 'apps', resource: 'deployments', subresource: 'status' }), { verbs: ['get'], apiGroups: ['apps'], resources: ['*/status'] }));
  assert.ok(!ruleAllows(attrs({ apiGroup: 'apps', resource: 'deployments' }), { verbs: ['get'], apiGroups: ['apps'], resources: ['*/status'] }));
  assert.ok(ruleAllows(attrs({ verb: 'delete', apiGroup: 'x.io', resource: 'foos', subresource: 'scale' }), { verbs: ['*'], apiGroups: ['*'], resources: ['*'] }));
  assert.ok(!ruleAllows(attrs({ apiGroup: 'apps' }), { verbs: ['get'], apiGroups: [''], resources: ['pods'] }));
  assert.ok(ruleAllows(attrs({ name: 'a' }), { verbs: ['get'], apiGroups: [''], resources: ['pods'], resourceNames: ['a'] }));
  assert.ok(!ruleAllows(attrs({ verb: 'list' }), { verbs: ['list'], apiGroups: [''], resources: ['pods'], resourceNames: ['a'] }), 'a list never matches resourceNames');
  const nr = (p: string): Attributes => attrs({ resourceRequest: false, path: p, resource: '', namespace: '' });
  assert.ok(ruleAllows(nr('/metrics'), { verbs: ['get'], nonResourceURLs: ['/metrics'] }));
  assert.ok(ruleAllows(nr('/apis/apps/v1'), { verbs: ['get'], nonResourceURLs: ['/apis/*'] }));
  assert.ok(!ruleAllows(nr('/metricsx'), { verbs: ['get'], nonResourceURLs: ['/metrics'] }));
  assert.ok(!ruleAllows(nr('/metrics'), { verbs: ['get'], apiGroups: ['*'], resources: ['*'] }), 'resource rules never grant paths');
});

test('bootstrap ClusterRoles and bindings exist; the admin (system:masters) may do anything', async () => {
  const s = t.server;
  for (const name of ['cluster-admin', 'admin', 'edit', 'view', 'system:discovery', 'system:basic-user']) {
    const r = await call(s, 'GET', `${RBAC}/clusterroles/${name}`);
    assert.equal(r.status, 200, name);
    assert.equal(r.body.metadata.labels['kubernetes.io/bootstrapping'], 'rbac-defaults');
  }
  const crb = (await call(s, 'GET', `${RBAC}/clusterrolebindings/cluster-admin`)).body;
  assert.deepEqual(crb.subjects.map((x: any) => `${x.kind}:${x.name}`), ['Group:system:masters']);
  assert.equal((await call(s, 'GET', '/api/v1/secrets')).status, 200);
});

test('a service account is denied with Kubernetes\' message, then allowed by a RoleBinding, down to subresources and names', async () => {
  const s = t.server;
  await create('/api/v1/namespaces', ns('team'));
  await create('/api/v1/namespaces/team/pods', pod('p1'));
  await create('/api/v1/namespaces/team/configmaps', { metadata: { name: 'one' }, data: {} });
  await create('/api/v1/namespaces/team/configmaps', { metadata: { name: 'two' }, data: {} });
  const token = await saToken('team', 'bot');
  const as = (method: string, p: string, body?: unknown, contentType?: string) => call(s, method, p, body, { token, contentType });

  // Discovery is open to every authenticated user (system:discovery, system:basic-user).
  assert.equal((await as('GET', '/apis')).status, 200);
  assert.equal((await as('GET', '/api/v1')).status, 200);
  assert.equal((await as('GET', '/openapi/v3')).status, 200);

  const denied = await as('GET', '/api/v1/namespaces/team/pods');
  assert.equal(denied.status, 403);
  assert.equal(denied.body.kind, 'Status');
  assert.equal(denied.body.reason, 'Forbidden');
  assert.equal(denied.body.code, 403);
  assert.equal(denied.body.message, 'pods is forbidden: User "system:serviceaccount:team:bot" cannot list resource "pods" in API group "" in the namespace "team"');
  const named = await as('DELETE', '/apis/apps/v1/namespaces/team/deployments/web');
  assert.equal(named.body.message, 'deployments.apps "web" is forbidden: User "system:serviceaccount:team:bot" cannot delete resource "deployments" in API group "apps" in the namespace "team"');
  assert.equal((await as('GET', '/api/v1/nodes')).body.message, 'nodes is forbidden: User "system:serviceaccount:team:bot" cannot list resource "nodes" in API group "" at the cluster scope');

  await create(`${RBAC}/namespaces/team/roles`, { metadata: { name: 'pod-reader' }, rules: [
    { apiGroups: [''], resources: ['pods', 'pods/status'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['configmaps'], resourceNames: ['one'], verbs: ['get'] },
  ] });
  await create(`${RBAC}/namespaces/team/rolebindings`, { metadata: { name: 'bot-reads' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
    subjects: [{ kind: 'ServiceAccount', name: 'bot', namespace: 'team' }] });

  assert.equal((await as('GET', '/api/v1/namespaces/team/pods')).status, 200);
  assert.equal((await as('GET', '/api/v1/namespaces/team/pods/p1')).status, 200);
  assert.equal((await as('GET', '/api/v1/namespaces/team/pods/p1/status')).status, 200);
  const patchStatus = await as('PATCH', '/api/v1/namespaces/team/pods/p1/status', { status: { phase: 'Running' } }, 'application/merge-patch+json');
  assert.equal(patchStatus.status, 403);
  assert.match(patchStatus.body.message, /cannot patch resource "pods\/status" in API group ""/);
  assert.equal((await as('DELETE', '/api/v1/namespaces/team/pods/p1')).status, 403);
  assert.equal((await as('GET', '/api/v1/namespaces/default/pods')).status, 403, 'a RoleBinding grants only its namespace');
  assert.equal((await as('GET', '/api/v1/namespaces/team/configmaps/one')).status, 200);
  assert.equal((await as('GET', '/api/v1/namespaces/team/configmaps/two')).status, 403);
  assert.equal((await as('GET', '/api/v1/namespaces/team/configmaps')).status, 403);

  // A ClusterRole bound to the namespace's service account group, cluster-wide.
  await create(`${RBAC}/clusterroles`, { metadata: { name: 'status-and-metrics' }, rules: [
    { apiGroups: ['apps'], resources: ['*/status'], verbs: ['get'] },
    { nonResourceURLs: ['/metrics'], verbs: ['get'] },
  ] });
  await create(`${RBAC}/clusterrolebindings`, { metadata: { name: 'team-sas' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'status-and-metrics' },
    subjects: [{ kind: 'Group', name: 'system:serviceaccounts:team', apiGroup: 'rbac.authorization.k8s.io' }] });
  const depStatus = await as('GET', '/apis/apps/v1/namespaces/default/deployments/none/status');
  assert.equal(depStatus.status, 404, 'allowed, and the deployment does not exist');
  assert.equal((await as('GET', '/apis/apps/v1/namespaces/default/deployments/none')).status, 403);

  // SelfSubjectAccessReview answers for the caller.
  const ssar = async (spec: unknown) => (await as('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec })).body;
  const yes = await ssar({ resourceAttributes: { namespace: 'team', verb: 'list', resource: 'pods' } });
  assert.equal(yes.kind, 'SelfSubjectAccessReview');
  assert.equal(yes.status.allowed, true);
  assert.equal((await ssar({ resourceAttributes: { namespace: 'team', verb: 'delete', resource: 'pods' } })).status.allowed, false);
  assert.equal((await ssar({ nonResourceAttributes: { path: '/metrics', verb: 'get' } })).status.allowed, true);
  assert.equal((await ssar({ nonResourceAttributes: { path: '/logs', verb: 'get' } })).status.allowed, false);
  const rules = (await as('POST', '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', { spec: { namespace: 'team' } })).body;
  assert.ok(rules.status.resourceRules.some((r: any) => r.resources.includes('pods/status')));

  // Removing the binding revokes at once.
  assert.equal((await call(s, 'DELETE', `${RBAC}/namespaces/team/rolebindings/bot-reads`)).status, 200);
  assert.equal((await as('GET', '/api/v1/namespaces/team/pods')).status, 403);
});

test('no privilege escalation: roles and bindings grant only what the writer holds (or may bind)', async () => {
  const s = t.server;
  await create('/api/v1/namespaces', ns('esc'));
  const token = await saToken('esc', 'lead');
  await create(`${RBAC}/namespaces/esc/rolebindings`, { metadata: { name: 'lead-admin' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' },
    subjects: [{ kind: 'ServiceAccount', name: 'lead', namespace: 'esc' }] });
  const as = (p: string, body: unknown) => call(s, 'POST', p, body, { token });

  assert.equal((await as(`${RBAC}/namespaces/esc/roles`, { metadata: { name: 'ok' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'delete'] }] })).status, 201);
  const tooMuch = await as(`${RBAC}/namespaces/esc/roles`, { metadata: { name: 'nodes' }, rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['list'] }] });
  assert.equal(tooMuch.status, 403);
  assert.match(tooMuch.body.message, /^roles.rbac.authorization.k8s.io "nodes" is forbidden: user "system:serviceaccount:esc:lead" .* is attempting to grant RBAC permissions not currently held:\n\{APIGroups:\[""\], Resources:\["nodes"\], Verbs:\["list"\]\}/);
  assert.equal((await as(`${RBAC}/namespaces/esc/rolebindings`, { metadata: { name: 'v' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' }, subjects: [{ kind: 'User', name: 'eve' }] })).status, 201);
  const bindAdmin = await as(`${RBAC}/namespaces/esc/rolebindings`, { metadata: { name: 'ca' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' }, subjects: [{ kind: 'User', name: 'eve' }] });
  assert.equal(bindAdmin.status, 403);
  assert.match(bindAdmin.body.message, /attempting to grant RBAC permissions not currently held/);
});

test('install/02-rbac.yaml grants pilot and the injector exactly what they call', async () => {
  const s = t.server;
  const file = path.join(process.cwd(), 'install', '02-rbac.yaml');
  await create('/api/v1/namespaces', ns('trellis-system'));
  for (const doc of parseAllDocuments(fs.readFileSync(file, 'utf8'))) {
    const o = doc.toJSON() as any;
    if (!o) continue;
    const base = o.apiVersion === 'v1' ? '/api/v1' : `/apis/${o.apiVersion}`;
    const nsPath = o.metadata.namespace ? `/namespaces/${o.metadata.namespace}` : '';
    const plural = `${o.kind.toLowerCase()}s`;
    await create(`${base}${nsPath}/${plural}`, o);
  }
  const pilot = await saToken('trellis-system', 'istiod');
  const injector = await saToken('trellis-system', 'trellis-injector');
  const allowed = async (token: string, method: string, p: string, body?: unknown, contentType?: string) => {
    const r = await call(s, method, p, body, { token, contentType });
    assert.notEqual(r.status, 403, `${method} ${p}: ${JSON.stringify(r.body)}`);
    assert.notEqual(r.status, 401, `${method} ${p}`);
  };
  // pilot/model/sources.ts: informers (list + watch) and the CRD probe (list limit=1).
  for (const p of ['/api/v1/namespaces', '/api/v1/services', '/api/v1/endpoints', '/api/v1/pods',
    '/apis/networking.istio.io/v1/virtualservices?limit=1', '/apis/networking.istio.io/v1beta1/destinationrules?limit=1']) {
    await allowed(pilot, 'GET', p);
    const verb = p.includes('?') ? `${p}&watch=true` : `${p}?watch=true`;
    const w = watch(s, verb, pilot);
    assert.ok(![401, 403].includes(await w.status), `watch ${p}`);
    w.close();
  }
  await allowed(pilot, 'POST', '/apis/authentication.k8s.io/v1/tokenreviews', { spec: { token: 'x' } });
  // injector/ca-bundle.ts: get and JSON-patch its MutatingWebhookConfiguration.
  await allowed(injector, 'GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/trellis-injector');
  await allowed(injector, 'PATCH', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/trellis-injector', [], 'application/json-patch+json');
  // And nothing more: the injector may not read secrets, pilot may not write services.
  assert.equal((await call(s, 'GET', '/api/v1/secrets', undefined, { token: injector })).status, 403);
  assert.equal((await call(s, 'DELETE', '/api/v1/namespaces/default/services/kubernetes', undefined, { token: pilot })).status, 403);
});

test('authorization: AlwaysAllow lets every authenticated user through (anonymous still 401)', async () => {
  // Same data dir: the PKI (slow to generate) is reused; the store is a fresh one.
  const open = await startTestServer({ memory: true, dir: t.dir, authorization: 'AlwaysAllow' });
  try {
    const s = open.server;
    await call(s, 'POST', '/api/v1/namespaces/default/serviceaccounts', { metadata: { name: 'any' } });
    const token = (await call(s, 'POST', '/api/v1/namespaces/default/serviceaccounts/any/token', { spec: {} })).body.status.token;
    assert.equal((await call(s, 'GET', '/api/v1/secrets', undefined, { token })).status, 200);
    assert.equal((await call(s, 'GET', '/api/v1/secrets', undefined, { token: null })).status, 401);
  } finally {
    await open.stop();
  }
});
