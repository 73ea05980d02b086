// The real kubectl against the API server with the cluster's controllers: rollout history,
// rollout undo (to the previous and to a given revision), and kubectl wait for a condition,
// a jsonpath value and deletion. No kubelet runs: a stand-in marks pods Running and Ready
// through pods/status, as a kubelet would. Skips without kubectl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { KubeClient } from '../../api/kube/index.js';
import { startControllers } from '../../cluster/controllers/index.js';
import { call, startTestServer, type TestServer } from './helpers.js';

const run = promisify(execFile);
const kubectlPath = (process.env.PATH ?? '').split(':').filter(Boolean).map((d) => path.join(d, 'kubectl')).find((p) => fs.existsSync(p));
const skip = kubectlPath ? false : 'kubectl is not on PATH';

let t: TestServer;
let client: KubeClient | undefined;
let controllers: { stop(): void } | undefined;
let kubelet: NodeJS.Timeout | undefined;

/** Marks every pending pod Running and Ready, like a kubelet whose containers all started. */
async function markPodsReady(): Promise<void> {
  const pods = (await call(t.server, 'GET', '/api/v1/pods')).body.items ?? [];
  for (const p of pods) {
    if (p.metadata.deletionTimestamp || p.status?.phase === 'Running') continue;
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    p.status = {
      phase: 'Running', podIP: '10.244.0.9', startTime: now,
      conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({ type, status: 'True', lastTransitionTime: now })),
      containerStatuses: p.spec.containers.map((c: any) => ({ name: c.name, image: c.image, imageID: '', ready: true, started: true, restartCount: 0, state: { running: { startedAt: now } } })),
    };
    await call(t.server, 'PUT', `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}/status`, p);
  }
}

before(async () => {
  if (skip) return;
  t = await startTestServer({ memory: true });
  client = new KubeClient({ server: t.server.url, caPem: t.server.caCertPem, token: t.server.adminToken }, 'kubectl-rollout-test');
  controllers = await startControllers({ client, rootCAPem: t.server.caCertPem });
  const tick = (): void => { kubelet = setTimeout(() => { markPodsReady().catch(() => {}).finally(() => { if (kubelet) tick(); }); }, 200); };
  tick();
});
after(async () => {
  const k = kubelet; kubelet = undefined; if (k) clearTimeout(k);
  controllers?.stop();
  await client?.close();
  await t?.stop();
});

async function kubectl(...a: string[]): Promise<string> {
  try {
    const { stdout } = await run(kubectlPath!, ['--kubeconfig', t.server.kubeconfigPath, '--cache-dir', path.join(t.dir, 'kube-cache'), ...a], { timeout: 60_000 });
    return stdout;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`kubectl ${a.join(' ')} failed: ${err.stderr ?? ''}${err.stdout ?? ''}${err.message}`);
  }
}

/**
 * Resolves once a client holds a namespace-scoped watch on the resource (the controllers'
 * informers watch cluster-wide), from apiserver_longrunning_requests.
 */
async function watching(resource: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  const open = (text: string): boolean => text.split('\n').some((l) => l.startsWith('apiserver_longrunning_requests{')
    && l.includes(`resource="${resource}"`) && l.includes('verb="WATCH"') && l.includes('scope="namespace"') && Number(l.split(' ').pop()) > 0);
  while (!open(String((await call(t.server, 'GET', '/metrics')).body))) {
    if (Date.now() > deadline) throw new Error(`no watch on ${resource} within 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const imageOf = async (): Promise<string> => (await call(t.server, 'GET', '/apis/apps/v1/namespaces/default/deployments/web')).body.spec.template.spec.containers[0].image;

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {kubernetes.io/change-cause: "first release"}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: trellis/sample-http:0.1.0
`;

test('kubectl wait --for=condition, rollout status, history and undo on a Deployment', { skip }, async () => {
  const file = path.join(t.dir, 'web.yaml');
  fs.writeFileSync(file, DEPLOYMENT);
  assert.match(await kubectl('apply', '-f', file), /deployment.apps\/web created/);
  assert.match(await kubectl('wait', '--for=condition=Available', '--timeout=60s', 'deployment/web'), /deployment.apps\/web condition met/);
  assert.match(await kubectl('rollout', 'status', 'deployment/web', '--timeout=60s'), /successfully rolled out/);

  // Revision 2 and 3, each with its change cause.
  await kubectl('set', 'image', 'deployment/web', 'app=trellis/sample-http:0.2.0');
  await kubectl('annotate', '--overwrite', 'deployment/web', 'kubernetes.io/change-cause=second release');
  await kubectl('rollout', 'status', 'deployment/web', '--timeout=60s');
  await kubectl('set', 'image', 'deployment/web', 'app=trellis/sample-http:0.3.0');
  await kubectl('annotate', '--overwrite', 'deployment/web', 'kubernetes.io/change-cause=third release');
  await kubectl('rollout', 'status', 'deployment/web', '--timeout=60s');

  const history = await kubectl('rollout', 'history', 'deployment/web');
  assert.match(history, /REVISION\s+CHANGE-CAUSE/);
  assert.match(history, /^1\s+first release$/m);
  assert.match(history, /^2\s+second release$/m);
  assert.match(history, /^3\s+third release$/m);
  const rev1 = await kubectl('rollout', 'history', 'deployment/web', '--revision=1');
  assert.match(rev1, /revision #1/);
  assert.match(rev1, /Image:\s+trellis\/sample-http:0\.1\.0/);

  // Undo goes back to the previous revision (2), which becomes revision 4.
  assert.match(await kubectl('rollout', 'undo', 'deployment/web'), /deployment.apps\/web rolled back/);
  assert.equal(await imageOf(), 'trellis/sample-http:0.2.0');
  await kubectl('rollout', 'status', 'deployment/web', '--timeout=60s');
  const after = await kubectl('rollout', 'history', 'deployment/web');
  assert.match(after, /^4\s+/m);
  assert.doesNotMatch(after, /^2\s+/m, 'revision 2 became revision 4');

  // Undo to a named revision.
  assert.match(await kubectl('rollout', 'undo', 'deployment/web', '--to-revision=1'), /rolled back/);
  assert.equal(await imageOf(), 'trellis/sample-http:0.1.0');
  await kubectl('wait', '--for=condition=Available', '--timeout=60s', 'deployment/web');
  const rsList = (await call(t.server, 'GET', '/apis/apps/v1/namespaces/default/replicasets')).body.items;
  assert.equal(rsList.length, 3, 'undo reuses the old ReplicaSets');
  const unknownRev = await kubectl('rollout', 'undo', 'deployment/web', '--to-revision=42').catch((e: Error) => e.message);
  assert.match(unknownRev, /unable to find specified revision 42 in history/);
});

test('kubectl wait for a jsonpath value and for deletion', { skip }, async () => {
  await call(t.server, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'flag' }, data: { state: 'off' } });
  const waiting = kubectl('wait', '--for=jsonpath={.data.state}=on', '--timeout=30s', 'configmap/flag');
  await watching('configmaps');
  await call(t.server, 'PATCH', '/api/v1/namespaces/default/configmaps/flag', { data: { state: 'on' } }, { contentType: 'application/merge-patch+json' });
  assert.match(await waiting, /configmap\/flag condition met/);

  // Delete only once kubectl watches (on a missing object kubectl wait --for=delete succeeds silently).
  const gone = kubectl('wait', '--for=delete', '--timeout=30s', 'configmap/flag');
  await watching('configmaps');
  await call(t.server, 'DELETE', '/api/v1/namespaces/default/configmaps/flag');
  assert.match(await gone, /configmap\/flag condition met/);
  // Waiting on a condition that never comes times out with kubectl's message.
  const timedOut = await kubectl('wait', '--for=condition=Ready', '--timeout=1s', 'deployment/web').catch((e: Error) => e.message);
  assert.match(timedOut, /timed out waiting for the condition on deployments\/web/);
});
