import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { call, ns, pod, describeStores, startTestServer, type TestServer } from './helpers.js';

let t: TestServer;

describeStores('API CRUD', (kind) => {
  before(async () => { t = await startTestServer({ store: kind }); });
  after(async () => { await t?.stop(); });

  test('discovery, version and health', async () => {
    const s = t.server;
    assert.equal((await call(s, 'GET', '/healthz', undefined, { token: null })).body, 'ok');
    const v = await call(s, 'GET', '/version', undefined, { token: null });
    assert.equal(v.body.gitVersion, 'v1.32.0');
    assert.equal(v.body.minor, '32');
    const core = await call(s, 'GET', '/api/v1');
    const pods = core.body.resources.find((r: any) => r.name === 'pods');
    assert.deepEqual(pods.shortNames, ['po']);
    assert.equal(pods.namespaced, true);
    assert.ok(core.body.resources.some((r: any) => r.name === 'pods/binding'));
    const apps = await call(s, 'GET', '/apis/apps/v1');
    assert.ok(apps.body.resources.some((r: any) => r.name === 'deployments/scale' && r.group === 'autoscaling' && r.kind === 'Scale'));
    const groups = await call(s, 'GET', '/apis');
    assert.ok(groups.body.groups.some((g: any) => g.name === 'apiextensions.k8s.io'));
  });

  test('unauthenticated requests get 401 Status', async () => {
    const r = await call(t.server, 'GET', '/api/v1/namespaces', undefined, { token: null });
    assert.equal(r.status, 401);
    assert.equal(r.body.kind, 'Status');
    assert.equal(r.body.reason, 'Unauthorized');
    assert.equal((await call(t.server, 'GET', '/api/v1/namespaces', undefined, { token: 'nope' })).status, 401);
  });

  test('system namespaces and the kubernetes Service exist', async () => {
    const s = t.server;
    const list = await call(s, 'GET', '/api/v1/namespaces');
    assert.equal(list.body.kind, 'NamespaceList');
    for (const n of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) assert.ok(list.body.items.some((i: any) => i.metadata.name === n), n);
    const svc = await call(s, 'GET', '/api/v1/namespaces/default/services/kubernetes');
    assert.equal(svc.body.spec.clusterIP, '10.96.0.1');
    assert.equal(svc.body.spec.ports[0].targetPort, s.port);
    const ep = await call(s, 'GET', '/api/v1/namespaces/default/endpoints/kubernetes');
    assert.equal(ep.body.subsets[0].ports[0].port, s.port);
  });

  test('pod CRUD, defaults, ServiceAccount volume and Status errors', async () => {
    const s = t.server;
    assert.equal((await call(s, 'POST', '/api/v1/namespaces', ns('crud'))).status, 201);
    const missingNs = await call(s, 'POST', '/api/v1/namespaces/nope/pods', pod('p'));
    assert.equal(missingNs.status, 404);
    assert.equal(missingNs.body.reason, 'NotFound');

    const created = await call(s, 'POST', '/api/v1/namespaces/crud/pods', pod('p1'));
    assert.equal(created.status, 201);
    const p = created.body;
    assert.equal(p.apiVersion, 'v1');
    assert.equal(p.kind, 'Pod');
    assert.match(p.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.ok(p.metadata.creationTimestamp);
    assert.equal(p.metadata.namespace, 'crud');
    assert.equal(p.status.phase, 'Pending');
    assert.equal(p.spec.restartPolicy, 'Always');
    assert.equal(p.spec.dnsPolicy, 'ClusterFirst');
    assert.equal(p.spec.serviceAccountName, 'default');
    assert.equal(p.spec.terminationGracePeriodSeconds, 30);
    assert.equal(p.spec.containers[0].imagePullPolicy, 'IfNotPresent');
    const vol = p.spec.volumes.find((v: any) => v.name.startsWith('kube-api-access-'));
    assert.match(vol.name, /^kube-api-access-[a-z0-9]{5}$/);
    assert.equal(vol.projected.sources[0].serviceAccountToken.expirationSeconds, 3607);
    assert.equal(vol.projected.sources[1].configMap.name, 'kube-root-ca.crt');
    assert.deepEqual(p.spec.containers[0].volumeMounts, [{ name: vol.name, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }]);

    const dup = await call(s, 'POST', '/api/v1/namespaces/crud/pods', pod('p1'));
    assert.equal(dup.status, 409);
    assert.equal(dup.body.reason, 'AlreadyExists');

    const bad = await call(s, 'POST', '/api/v1/namespaces/crud/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bad' }, spec: { containers: [{ name: 'c' }] } });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.reason, 'Invalid');
    assert.equal(bad.body.details.causes[0].field, 'spec.containers[0].image');

    const gen = await call(s, 'POST', '/api/v1/namespaces/crud/pods', { ...pod('x'), metadata: { generateName: 'web-' } });
    assert.match(gen.body.metadata.name, /^web-[a-z0-9]{5}$/);

    const got = await call(s, 'GET', '/api/v1/namespaces/crud/pods/p1');
    assert.equal(got.body.metadata.resourceVersion, p.metadata.resourceVersion);
    const nf = await call(s, 'GET', '/api/v1/namespaces/crud/pods/nope');
    assert.equal(nf.status, 404);
    assert.equal(nf.body.message, 'pods "nope" not found');

    // Unscheduled pods are removed at once.
    const del = await call(s, 'DELETE', '/api/v1/namespaces/crud/pods/p1');
    assert.equal(del.status, 200);
    assert.equal((await call(s, 'GET', '/api/v1/namespaces/crud/pods/p1')).status, 404);
  });

  test('optimistic concurrency: a stale resourceVersion gets 409 Conflict; generation follows spec', async () => {
    const s = t.server;
    const cm = (await call(s, 'POST', '/apis/apps/v1/namespaces/default/deployments', {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'occ' },
      spec: { selector: { matchLabels: { app: 'occ' } }, template: { metadata: { labels: { app: 'occ' } }, spec: { containers: [{ name: 'a', image: 'x:1' }] } } },
    })).body;
    assert.equal(cm.metadata.generation, 1);
    assert.equal(cm.spec.replicas, 1);
    const v1 = structuredClone(cm);
    v1.spec.replicas = 2;
    const ok = await call(s, 'PUT', '/apis/apps/v1/namespaces/default/deployments/occ', v1);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.metadata.generation, 2);
    assert.notEqual(ok.body.metadata.resourceVersion, cm.metadata.resourceVersion);
    const stale = structuredClone(cm);
    stale.spec.replicas = 3;
    const r = await call(s, 'PUT', '/apis/apps/v1/namespaces/default/deployments/occ', stale);
    assert.equal(r.status, 409);
    assert.equal(r.body.reason, 'Conflict');
    assert.match(r.body.message, /the object has been modified/);

    // Status updates do not bump generation; main-resource updates cannot change status.
    const st = structuredClone(ok.body);
    st.status = { replicas: 2, observedGeneration: 2 };
    const su = await call(s, 'PUT', '/apis/apps/v1/namespaces/default/deployments/occ/status', st);
    assert.equal(su.body.status.replicas, 2);
    assert.equal(su.body.metadata.generation, 2);

    // Scale subresource.
    const scale = await call(s, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/occ/scale', { spec: { replicas: 4 } }, { contentType: 'application/merge-patch+json' });
    assert.equal(scale.body.kind, 'Scale');
    assert.equal(scale.body.spec.replicas, 4);
    assert.equal(scale.body.status.selector, 'app=occ');
    assert.equal((await call(s, 'GET', '/apis/apps/v1/namespaces/default/deployments/occ')).body.spec.replicas, 4);
  });

  test('patch: JSON patch, merge patch and strategic merge of containers/env by name', async () => {
    const s = t.server;
    await call(s, 'POST', '/api/v1/namespaces/default/pods', pod('patchme'));
    const smp = await call(s, 'PATCH', '/api/v1/namespaces/default/pods/patchme', {
      metadata: { labels: { extra: 'yes' } },
      spec: { containers: [{ name: 'app', env: [{ name: 'B', value: '2' }, { name: 'A', $patch: 'delete' }] }] },
    }, { contentType: 'application/strategic-merge-patch+json' });
    assert.equal(smp.status, 422, 'pod spec env is immutable after creation'); // Kubernetes forbids env changes on pods
    const dsmp = await call(s, 'POST', '/apis/apps/v1/namespaces/default/deployments', {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'pd' },
      spec: { selector: { matchLabels: { app: 'pd' } }, template: { metadata: { labels: { app: 'pd' } }, spec: { containers: [{ name: 'a', image: 'x:1', env: [{ name: 'A', value: '1' }] }, { name: 'b', image: 'y:1' }] } } },
    });
    assert.equal(dsmp.status, 201);
    const patched = await call(s, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/pd', {
      spec: { template: { spec: { containers: [{ name: 'a', env: [{ name: 'B', value: '2' }, { name: 'A', $patch: 'delete' }] }] } } },
    }, { contentType: 'application/strategic-merge-patch+json' });
    assert.equal(patched.status, 200);
    const cs = patched.body.spec.template.spec.containers;
    assert.equal(cs.length, 2, 'other containers kept');
    assert.deepEqual(cs[0].env, [{ name: 'B', value: '2' }]);
    assert.equal(cs[0].image, 'x:1');
    const merge = await call(s, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/pd', { metadata: { labels: { a: 'b' } } }, { contentType: 'application/merge-patch+json' });
    assert.deepEqual(merge.body.metadata.labels, { a: 'b' });
    const jp = await call(s, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/pd', [{ op: 'replace', path: '/spec/replicas', value: 3 }], { contentType: 'application/json-patch+json' });
    assert.equal(jp.body.spec.replicas, 3);
    const stale = await call(s, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/pd', { metadata: { resourceVersion: '1' }, spec: { replicas: 5 } }, { contentType: 'application/merge-patch+json' });
    assert.equal(stale.status, 409);
  });

  test('label and field selectors on list', async () => {
    const s = t.server;
    await call(s, 'POST', '/api/v1/namespaces', ns('sel'));
    for (const [name, labels] of [['a', { app: 'web', tier: 'fe' }], ['b', { app: 'web', tier: 'be' }], ['c', { app: 'db' }]] as const) {
      await call(s, 'POST', '/api/v1/namespaces/sel/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels } });
    }
    const names = async (q: string): Promise<string[]> => (await call(s, 'GET', `/api/v1/namespaces/sel/configmaps?${q}`)).body.items.map((i: any) => i.metadata.name).filter((n: string) => n !== 'kube-root-ca.crt');
    assert.deepEqual(await names('labelSelector=app%3Dweb'), ['a', 'b']);
    assert.deepEqual(await names('labelSelector=app%3D%3Dweb,tier!%3Dfe'), ['b']);
    assert.deepEqual(await names('labelSelector=tier%20in%20(fe,be)'), ['a', 'b']);
    assert.deepEqual(await names('labelSelector=app%20notin%20(web)'), ['c']);
    assert.deepEqual(await names('labelSelector=tier'), ['a', 'b']);
    assert.deepEqual(await names('labelSelector=!tier'), ['c']);
    assert.deepEqual(await names('fieldSelector=metadata.name%3Db'), ['b']);
    assert.deepEqual(await names('fieldSelector=metadata.name!%3Db&labelSelector=app%3Dweb'), ['a']);
    // Pods: spec.nodeName and status.phase.
    await call(s, 'POST', '/api/v1/namespaces/sel/pods', pod('unsched'));
    await call(s, 'POST', '/api/v1/namespaces/sel/pods', { ...pod('sched'), spec: { ...pod('x').spec, nodeName: 'node-1' } });
    const onNode = await call(s, 'GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1');
    assert.deepEqual(onNode.body.items.map((i: any) => i.metadata.name), ['sched']);
    const pending = await call(s, 'GET', '/api/v1/namespaces/sel/pods?fieldSelector=status.phase%3DPending,spec.nodeName%3D');
    assert.deepEqual(pending.body.items.map((i: any) => i.metadata.name), ['unsched']);
  });

  test('Table output for kubectl get', async () => {
    const s = t.server;
    await call(s, 'POST', '/api/v1/namespaces/default/pods', pod('tbl'));
    const r = await call(s, 'GET', '/api/v1/namespaces/default/pods', undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
    assert.equal(r.body.kind, 'Table');
    assert.deepEqual(r.body.columnDefinitions.filter((c: any) => c.priority === 0).map((c: any) => c.name), ['Name', 'Ready', 'Status', 'Restarts', 'Age']);
    const row = r.body.rows.find((x: any) => x.cells[0] === 'tbl');
    assert.equal(row.cells[1], '0/1');
    assert.equal(row.cells[2], 'Pending');
    assert.equal(row.object.kind, 'PartialObjectMetadata');

    // -o wide columns (priority 1) as Kubernetes prints them: Deployment adds Containers, Images, Selector.
    const d = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'wide' }, spec: { replicas: 1, selector: { matchLabels: { tier: 'web', app: 'wide' }, matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'dev'] }] }, template: { metadata: { labels: { app: 'wide', tier: 'web', env: 'dev' } }, spec: { containers: [{ name: 'a', image: 'img-a' }, { name: 'b', image: 'img-b' }] } } } };
    assert.equal((await call(s, 'POST', '/apis/apps/v1/namespaces/default/deployments', d)).status, 201);
    const dt = await call(s, 'GET', '/apis/apps/v1/namespaces/default/deployments/wide', undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' });
    assert.deepEqual(dt.body.columnDefinitions.map((c: any) => `${c.name}:${c.priority}`), ['Name:0', 'Ready:0', 'Up-to-date:0', 'Available:0', 'Age:0', 'Containers:1', 'Images:1', 'Selector:1']);
    assert.deepEqual(dt.body.rows[0].cells.slice(5), ['a,b', 'img-a,img-b', 'app=wide,env in (dev,prod),tier=web']);
  });
});
