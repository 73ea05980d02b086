import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { R, type Secret, type ServiceAccount } from '../../api/kube/index.js';
import { startControllers } from '../../cluster/controllers/index.js';
import { call } from '../apiserver/helpers.js';
import { startCluster, waitFor, type Cluster } from './harness.js';

let cluster: Cluster;
let controllers: { stop(): void };
before(async () => {
  cluster = await startCluster();
  controllers = await startControllers({ client: cluster.client, rootCAPem: cluster.api.caCertPem, legacyTokenIssuer: cluster.api.issueLegacyServiceAccountToken });
});
after(async () => {
  controllers?.stop();
  await cluster?.close();
});

const tokenSecret = (name: string, account: string): Secret => ({
  metadata: { name, namespace: 'default', annotations: { 'kubernetes.io/service-account.name': account } },
  type: 'kubernetes.io/service-account-token',
});

async function filledToken(name: string): Promise<Secret> {
  return waitFor(`token in secret ${name}`, async () => {
    const s = await cluster.client.get<Secret>(R.secrets, name, 'default');
    return s.data?.token ? s : undefined;
  });
}

const decode = (v: string | undefined) => Buffer.from(v ?? '', 'base64').toString('utf8');

async function review(token: string, audiences?: string[]): Promise<{ authenticated?: boolean; user?: { username?: string }; error?: string }> {
  const r = await call(cluster.api, 'POST', '/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return (r.body as { status: { authenticated?: boolean; user?: { username?: string }; error?: string } }).status;
}

test('a service-account-token Secret gets its account\'s token, the cluster CA and the namespace', async () => {
  const sa = await cluster.client.create<ServiceAccount>(R.serviceAccounts, { metadata: { name: 'builder', namespace: 'default' } });
  await cluster.client.create<Secret>(R.secrets, tokenSecret('builder-token', 'builder'));
  const s = await filledToken('builder-token');
  assert.equal(decode(s.data?.['ca.crt']), cluster.api.caCertPem);
  assert.equal(decode(s.data?.namespace), 'default');
  assert.equal(s.metadata.annotations?.['kubernetes.io/service-account.uid'], sa.metadata.uid);

  const token = decode(s.data?.token);
  const ok = await review(token);
  assert.equal(ok.authenticated, true, ok.error);
  assert.equal(ok.user?.username, 'system:serviceaccount:default:builder');
  // The token is the account's own: authenticated, but RBAC grants it nothing yet.
  const asBuilder = await call(cluster.api, 'GET', '/api/v1/namespaces/default/secrets', undefined, { token });
  assert.equal(asBuilder.status, 403);
  assert.match(JSON.stringify(asBuilder.body), /system:serviceaccount:default:builder/);
  // A legacy token has no audience of its own: it is not good for another audience.
  assert.equal((await review(token, ['istio-ca'])).authenticated, false);
});

test('a token stops working when its Secret is deleted, and a Secret goes when its account goes', async () => {
  await cluster.client.create<ServiceAccount>(R.serviceAccounts, { metadata: { name: 'deployer', namespace: 'default' } });
  await cluster.client.create<Secret>(R.secrets, tokenSecret('deployer-a', 'deployer'));
  await cluster.client.create<Secret>(R.secrets, tokenSecret('deployer-b', 'deployer'));
  const a = decode((await filledToken('deployer-a')).data?.token);
  const b = decode((await filledToken('deployer-b')).data?.token);
  assert.equal((await review(a)).authenticated, true);

  await cluster.client.delete(R.secrets, 'deployer-a', 'default');
  const gone = await review(a);
  assert.equal(gone.authenticated, false);
  assert.match(gone.error ?? '', /deployer-a/);
  assert.equal((await review(b)).authenticated, true);

  await cluster.client.delete(R.serviceAccounts, 'deployer', 'default');
  await waitFor('deployer-b deleted with its account', async () => {
    try { await cluster.client.get(R.secrets, 'deployer-b', 'default'); return false; } catch { return true; }
  });
  assert.equal((await review(b)).authenticated, false);
});

test('a Secret naming an account that does not exist is deleted; one naming no account is refused', async () => {
  await cluster.client.create<Secret>(R.secrets, tokenSecret('ghost-token', 'ghost'));
  await waitFor('ghost-token deleted', async () => {
    try { await cluster.client.get(R.secrets, 'ghost-token', 'default'); return false; } catch { return true; }
  });
  const r = await call(cluster.api, 'POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'anon-token' }, type: 'kubernetes.io/service-account-token' });
  assert.equal(r.status, 422);
  const causes = (r.body as { details?: { causes?: { field?: string }[] } }).details?.causes ?? [];
  assert.ok(causes.some((c) => c.field === 'metadata.annotations[kubernetes.io/service-account.name]'), JSON.stringify(r.body));
});

test('a forged legacy token (signed by another key) is refused', async () => {
  const other = await startCluster();
  try {
    await other.client.create<ServiceAccount>(R.serviceAccounts, { metadata: { name: 'builder', namespace: 'default' } });
    const forged = other.api.issueLegacyServiceAccountToken({ namespace: 'default', name: 'builder', uid: 'x' }, 'builder-token');
    const r = await review(forged);
    assert.equal(r.authenticated, false);
    assert.match(r.error ?? '', /signature/);
  } finally {
    await other.close();
  }
});
