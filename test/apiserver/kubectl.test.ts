// The real kubectl (v1.32 on this machine) against one apiserver with the cluster's
// controllers running, commands in sequence as a user would type them. Skips without kubectl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { KubeClient } from '../../api/kube/index.js';
import { startControllers } from '../../cluster/controllers/index.js';
import { call, startTestServer, type TestServer } from './helpers.js';

const run = promisify(execFile);

function findKubectl(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, 'kubectl');
    if (dir && fs.existsSync(p)) return p;
  }
  return undefined;
}

const kubectlPath = findKubectl();
const skip = kubectlPath ? false : 'kubectl is not on PATH';

let t: TestServer;
let client: KubeClient | undefined;
let controllers: { stop(): void } | undefined;
before(async () => {
  if (skip) return;
  t = await startTestServer();
  client = new KubeClient({ server: t.server.url, caPem: t.server.caCertPem, token: t.server.adminToken }, 'kubectl-test-controllers');
  controllers = await startControllers({ client, rootCAPem: t.server.caCertPem });
});
after(async () => {
  controllers?.stop();
  await client?.close();
  await t?.stop();
});

function args(a: string[]): string[] {
  return ['--kubeconfig', t.server.kubeconfigPath, '--cache-dir', path.join(t.dir, 'kube-cache'), ...a];
}

async function kubectl(...a: string[]): Promise<string> {
  try {
    const { stdout } = await run(kubectlPath!, args(a), { timeout: 30_000 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`kubectl ${a.join(' ')} failed: ${err.stderr ?? err.message}`);
  }
}

/** Runs kubectl expecting a non-zero exit; returns stdout + stderr. */
async function kubectlFails(...a: string[]): Promise<string> {
  try {
    await run(kubectlPath!, args(a), { timeout: 30_000 });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return `${err.stdout ?? ''}${err.stderr ?? ''}`;
  }
  throw new Error(`kubectl ${a.join(' ')} succeeded, expected a failure`);
}

const APP = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: trellis/sample-http:0.1.0
        env:
        - {name: A, value: "1"}
`;

const EXTRAS = `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - {port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Pod
metadata:
  name: solo
  namespace: shop
  labels: {app: solo, tier: back}
spec:
  containers:
  - name: app
    image: trellis/sample-http:0.1.0
`;

test('kubectl end to end: apply, get, describe, label, annotate, scale, auth can-i, watch, delete', { skip }, async () => {
  const s = t.server;
  const app = path.join(t.dir, 'app.yaml');
  const extras = path.join(t.dir, 'extras.yaml');
  fs.writeFileSync(app, APP);
  fs.writeFileSync(extras, EXTRAS);

  assert.match(await kubectl('get', 'ns'), /^kube-system\s+Active/m);
  const created = await kubectl('apply', '-f', app, '-f', extras);
  for (const what of ['namespace/shop', 'deployment.apps/web', 'service/web', 'pod/solo']) assert.match(created, new RegExp(`${what} created`));
  fs.writeFileSync(app, APP.replace('replicas: 2', 'replicas: 3').replace('value: "1"', 'value: "2"'));
  const again = await kubectl('apply', '-f', app);
  assert.match(again, /namespace\/shop unchanged/);
  assert.match(again, /deployment.apps\/web configured/);
  assert.match(await kubectl('apply', '--server-side', '-f', extras), /pod\/solo serverside-applied/);

  const d = JSON.parse(await kubectl('get', 'deploy', 'web', '-n', 'shop', '-o', 'json'));
  assert.equal(d.kind, 'Deployment');
  assert.equal(d.spec.replicas, 3);
  assert.equal(d.metadata.generation, 2);
  assert.deepEqual(d.spec.template.spec.containers[0].env, [{ name: 'A', value: '2' }]);
  const solo = parseYaml(await kubectl('get', 'pod', 'solo', '-n', 'shop', '-o', 'yaml'));
  assert.equal(solo.kind, 'Pod');
  assert.equal(solo.metadata.labels.tier, 'back');

  assert.match(await kubectl('get', 'pods', '-n', 'shop', '-o', 'wide'), /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE/m);
  const selected = await kubectl('get', 'pods', '-n', 'shop', '-l', 'tier=back', '-o', 'name');
  assert.equal(selected.trim(), 'pod/solo');
  assert.match(await kubectl('get', 'pods', '-A'), /^shop\s+solo\s+0\/1\s+Pending/m);
  const all = await kubectl('get', 'all', '-n', 'shop', '-o', 'name');
  for (const what of ['pod/solo', 'service/web', 'deployment.apps/web']) assert.match(all, new RegExp(`^${what}$`, 'm'));
  assert.match(all, /^replicaset.apps\/web-/m, 'the deployment controller made a ReplicaSet');

  // describe lists the pod's events (fieldSelector involvedObject.*).
  await call(s, 'POST', '/api/v1/namespaces/shop/events', {
    apiVersion: 'v1', kind: 'Event', metadata: { name: 'solo.1' },
    involvedObject: { apiVersion: 'v1', kind: 'Pod', name: 'solo', namespace: 'shop', uid: solo.metadata.uid },
    reason: 'Scheduled', message: 'Successfully assigned shop/solo to node-a', type: 'Normal', source: { component: 'default-scheduler' },
    firstTimestamp: new Date().toISOString(), lastTimestamp: new Date().toISOString(), count: 1,
  });
  const described = await kubectl('describe', 'pod', 'solo', '-n', 'shop');
  assert.match(described, /^Name:\s+solo$/m);
  assert.match(described, /^Labels:\s+app=solo$/m);
  assert.match(described, /Normal\s+Scheduled\s+\S+\s+default-scheduler\s+Successfully assigned shop\/solo to node-a/);

  assert.match(await kubectl('label', 'pod', 'solo', '-n', 'shop', 'color=blue'), /pod\/solo labeled/);
  assert.match(await kubectl('annotate', 'pod', 'solo', '-n', 'shop', 'note=hi'), /pod\/solo annotated/);
  const labelled = (await call(s, 'GET', '/api/v1/namespaces/shop/pods/solo')).body;
  assert.equal(labelled.metadata.labels.color, 'blue');
  assert.equal(labelled.metadata.annotations.note, 'hi');

  assert.match(await kubectl('scale', 'deploy', 'web', '-n', 'shop', '--replicas=1'), /deployment.apps\/web scaled/);
  assert.equal((await call(s, 'GET', '/apis/apps/v1/namespaces/shop/deployments/web')).body.spec.replicas, 1);

  // auth can-i: the admin may; a service account may not until bound to `edit`.
  assert.equal((await kubectl('auth', 'can-i', 'create', 'pods', '-n', 'shop')).trim(), 'yes');
  const sa = 'system:serviceaccount:shop:default';
  assert.equal((await kubectlFails('auth', 'can-i', 'create', 'pods', '-n', 'shop', `--as=${sa}`)).trim(), 'no');
  assert.match(await kubectlFails('get', 'pods', '-n', 'shop', `--as=${sa}`),
    /Error from server \(Forbidden\): pods is forbidden: User "system:serviceaccount:shop:default" cannot list resource "pods" in API group "" in the namespace "shop"/);
  await kubectl('create', 'rolebinding', 'sa-edit', '-n', 'shop', '--clusterrole=edit', '--serviceaccount=shop:default');
  assert.equal((await kubectl('auth', 'can-i', 'create', 'pods', '-n', 'shop', `--as=${sa}`)).trim(), 'yes');
  assert.equal((await kubectlFails('auth', 'can-i', 'create', 'roles', '-n', 'shop', `--as=${sa}`)).trim(), 'no');

  // get --watch: the current rows, then a change as it happens.
  const watcher = spawn(kubectlPath!, args(['get', 'pods', '-n', 'shop', '-l', 'tier=back', '--watch']));
  try {
    let out = '';
    const lines = (n: number) => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kubectl get -w printed only: ${out}`)), 10_000);
      // Only complete lines count: a row may arrive in two chunks.
      const check = () => { if (out.slice(0, out.lastIndexOf('\n') + 1).split('\n').filter((l) => l.trim()).length >= n) { clearTimeout(timer); resolve(); } };
      watcher.stdout.on('data', (c: Buffer) => { out += c.toString(); check(); });
      check();
    });
    await lines(2);
    assert.match(out, /^NAME\s+READY\s+STATUS/m);
    assert.match(out, /^solo\s+0\/1\s+Pending/m);
    await kubectl('label', 'pod', 'solo', '-n', 'shop', 'color=red', '--overwrite');
    await lines(3);
  } finally {
    watcher.kill();
  }

  assert.match(await kubectl('create', 'namespace', 'made-by-kubectl'), /namespace\/made-by-kubectl created/);
  assert.equal((await call(s, 'GET', '/api/v1/namespaces/made-by-kubectl')).status, 200);

  const deleted = await kubectl('delete', '-f', extras);
  assert.match(deleted, /service "web" deleted/);
  assert.match(deleted, /pod "solo" deleted/);
  assert.equal((await call(s, 'GET', '/api/v1/namespaces/shop/pods/solo')).status, 404);
  // The namespace stays Terminating until the namespace controller emptied it; kubectl waits for that.
  assert.match(await kubectl('delete', 'ns', 'shop', '--timeout=20s'), /namespace "shop" deleted/);
  assert.equal((await call(s, 'GET', '/api/v1/namespaces/shop')).status, 404);
  assert.equal((await call(s, 'GET', '/apis/apps/v1/namespaces/shop/deployments/web')).status, 404);
});

test('state, CA and admin token survive an apiserver restart', { skip }, async () => {
  controllers?.stop();
  controllers = undefined;
  const before = fs.readFileSync(path.join(t.dir, 'pki', 'ca.crt'), 'utf8');
  const token = t.server.adminToken;
  await t.server.close();
  const again = await startTestServer({ dir: t.dir });
  t = { ...again, stop: async () => { await again.server.close(); fs.rmSync(t.dir, { recursive: true, force: true }); } };
  assert.equal(again.server.caCertPem, before);
  assert.equal(again.server.adminToken, token);
  assert.match(await kubectl('get', 'ns', 'made-by-kubectl', '-o', 'name'), /namespace\/made-by-kubectl/);
});
