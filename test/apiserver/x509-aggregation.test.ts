// X.509 client-certificate authentication (CN = user, O = groups, signed by the API server's
// client CA; kubectl with client-certificate-data) and ClusterRole aggregation (admin/edit/view
// extended by labelled ClusterRoles, as in Kubernetes).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as os from 'node:os';
import { ensurePki, issueClientCert } from '../../cluster/apiserver/pki.js';
import { writeKubeconfig } from '../../cluster/apiserver/kubeconfig.js';
import { call, startTestServer, type Resp, type TestServer } from './helpers.js';

const run = promisify(execFile);
const RBAC = '/apis/rbac.authorization.k8s.io/v1';
const kubectlPath = (process.env.PATH ?? '').split(':').map((d) => path.join(d, 'kubectl')).find((p) => fs.existsSync(p));

let t: TestServer;
before(async () => { t = await startTestServer({ memory: true }); });
after(async () => { await t?.stop(); });

/** A request authenticated only by a client certificate (no bearer token). */
function callWithCert(method: string, urlPath: string, cert: { certPem: string; keyPem: string }, body?: unknown): Promise<Resp> {
  const s = t.server;
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(`${s.url}${urlPath}`, {
      method, ca: s.caCertPem, cert: cert.certPem, key: cert.keyPem, agent: false,
      headers: data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {},
    }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString(); });
      res.on('end', () => { let b: unknown = text; try { b = JSON.parse(text); } catch { /* text */ } resolve({ status: res.statusCode ?? 0, body: b, headers: res.headers }); });
    });
    req.on('error', reject);
    req.end(data);
  });
}

const whoami = { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' };

test('a client certificate from the API server CA authenticates CN as the user and O as groups', async () => {
  const s = t.server;
  const alice = s.issueClientCertificate('alice', ['team-a', 'qa']);
  const me = await callWithCert('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', alice, whoami);
  assert.equal(me.status, 201, JSON.stringify(me.body));
  assert.equal(me.body.status.userInfo.username, 'alice');
  assert.deepEqual(me.body.status.userInfo.groups, ['team-a', 'qa', 'system:authenticated']);

  const denied = await callWithCert('GET', '/api/v1/namespaces/default/configmaps', alice);
  assert.equal(denied.status, 403);
  assert.match(denied.body.message, /User "alice" cannot list resource "configmaps"/);
  // RBAC sees the groups from O.
  assert.equal((await call(s, 'POST', `${RBAC}/clusterrolebindings`, { metadata: { name: 'team-a-view' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
    subjects: [{ kind: 'Group', name: 'team-a', apiGroup: 'rbac.authorization.k8s.io' }] })).status, 201);
  assert.equal((await callWithCert('GET', '/api/v1/namespaces/default/configmaps', alice)).status, 200);
  assert.equal((await callWithCert('DELETE', '/api/v1/namespaces/default/configmaps/kube-root-ca.crt', alice)).status, 403);

  const root = s.issueClientCertificate('root', ['system:masters']);
  assert.equal((await callWithCert('GET', '/api/v1/nodes', root)).status, 200);
});

test('certificates from another CA, or without clientAuth usage, are refused with 401', async () => {
  // A well-formed client certificate for a system:masters user, from a CA the server does not know.
  const otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-other-ca-'));
  try {
    const other = ensurePki(otherDir, { ips: [], dnsNames: ['x'] }, 'other');
    const foreign = issueClientCert(other.caCertPem, other.caKeyPem, 'mallory', ['system:masters']);
    const r = await callWithCert('GET', '/api/v1/namespaces', foreign);
    assert.equal(r.status, 401);
    assert.equal(r.body.reason, 'Unauthorized');
  } finally {
    fs.rmSync(otherDir, { recursive: true, force: true });
  }
  // The API server's own serving certificate is signed by the same CA but is for serverAuth only.
  const serving = { certPem: fs.readFileSync(path.join(t.dir, 'pki', 'apiserver.crt'), 'utf8'), keyPem: fs.readFileSync(path.join(t.dir, 'pki', 'apiserver.key'), 'utf8') };
  assert.equal((await callWithCert('GET', '/api/v1/namespaces', serving)).status, 401);
});

test('kubectl with client-certificate-data in its kubeconfig', { skip: kubectlPath ? false : 'kubectl is not on PATH' }, async () => {
  const s = t.server;
  const bob = s.issueClientCertificate('bob', ['system:masters']);
  const kubeconfig = path.join(t.dir, 'bob.kubeconfig');
  writeKubeconfig(kubeconfig, { clusterName: 'trellis', server: s.url, caCertPem: s.caCertPem, user: 'bob', clientCertPem: bob.certPem, clientKeyPem: bob.keyPem });
  const kc = async (...a: string[]) => (await run(kubectlPath!, ['--kubeconfig', kubeconfig, '--cache-dir', path.join(t.dir, 'kc-cache'), ...a], { timeout: 30_000 })).stdout;
  const who = JSON.parse(await kc('auth', 'whoami', '-o', 'json'));
  assert.equal(who.status.userInfo.username, 'bob');
  assert.ok(who.status.userInfo.groups.includes('system:masters'));
  assert.match(await kc('get', 'namespaces'), /kube-system/);
  assert.equal((await kc('auth', 'can-i', 'delete', 'nodes')).trim(), 'yes');
});

async function rulesOf(name: string): Promise<any[]> {
  return (await call(t.server, 'GET', `${RBAC}/clusterroles/${name}`)).body.rules ?? [];
}

async function until(what: string, cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('ClusterRole aggregation: aggregate-to-view extends view (and only view); labels and selectors are followed', async () => {
  const s = t.server;
  const view = (await call(s, 'GET', `${RBAC}/clusterroles/view`)).body;
  assert.deepEqual(view.aggregationRule, { clusterRoleSelectors: [{ matchLabels: { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' } }] });
  const hasPods = (rules: any[], verb: string) => rules.some((r) => r.resources?.includes('pods') && r.verbs.includes(verb));
  assert.ok(hasPods(view.rules, 'list'), 'view gets the defaults from system:aggregate-to-view');
  assert.ok(!hasPods(view.rules, 'delete'));
  assert.ok(hasPods(await rulesOf('edit'), 'delete'), 'edit = view + system:aggregate-to-edit');
  assert.ok((await rulesOf('admin')).some((r) => r.resources?.includes('rolebindings')), 'admin = edit + system:aggregate-to-admin');

  const widgets = { apiGroups: ['example.com'], resources: ['widgets'], verbs: ['get', 'list', 'watch'] };
  const isWidgets = (r: any) => r.apiGroups?.includes('example.com') && r.resources?.includes('widgets');
  assert.equal((await call(s, 'POST', `${RBAC}/clusterroles`, { metadata: { name: 'widget-viewer', labels: { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' } }, rules: [widgets] })).status, 201);
  await until('view to include widgets', async () => (await rulesOf('view')).some(isWidgets));
  assert.ok(!(await rulesOf('edit')).some(isWidgets), 'a view-only label does not extend edit');
  // A user bound to view may now list widgets (the authorizer uses the aggregated rules).
  const carol = s.issueClientCertificate('carol', ['viewers']);
  assert.equal((await call(s, 'POST', `${RBAC}/clusterrolebindings`, { metadata: { name: 'viewers' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
    subjects: [{ kind: 'Group', name: 'viewers', apiGroup: 'rbac.authorization.k8s.io' }] })).status, 201);
  const can = async () => (await callWithCert('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', carol,
    { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { group: 'example.com', resource: 'widgets', verb: 'list' } } })).body.status.allowed;
  await until('carol may list widgets', async () => (await can()) === true);

  // Removing the label takes the rules away again.
  const wv = (await call(s, 'GET', `${RBAC}/clusterroles/widget-viewer`)).body;
  wv.metadata.labels = {};
  assert.equal((await call(s, 'PUT', `${RBAC}/clusterroles/widget-viewer`, wv)).status, 200);
  await until('view to lose widgets', async () => !(await rulesOf('view')).some(isWidgets));
  await until('carol may no longer list widgets', async () => (await can()) === false);

  // A custom aggregated role with matchExpressions; rules written by a client are replaced.
  assert.equal((await call(s, 'POST', `${RBAC}/clusterroles`, { metadata: { name: 'monitoring' },
    aggregationRule: { clusterRoleSelectors: [{ matchExpressions: [{ key: 'example.com/aggregate-to-monitoring', operator: 'Exists' }] }] },
    rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] })).status, 201);
  await call(s, 'POST', `${RBAC}/clusterroles`, { metadata: { name: 'metrics-reader', labels: { 'example.com/aggregate-to-monitoring': 'yes' } }, rules: [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }] });
  await until('monitoring to hold exactly the metrics rule', async () => JSON.stringify(await rulesOf('monitoring')) === JSON.stringify([{ nonResourceURLs: ['/metrics'], verbs: ['get'] }]));
});
