// Strategic merge patch on built-in kinds, with Kubernetes' patchMergeKeys and directives,
// run on the FileStore and on etcd.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { call, describeStores, startTestServer, type TestServer } from './helpers.js';

let t: TestServer;
const SMP = { contentType: 'application/strategic-merge-patch+json' };

const deployment = {
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', finalizers: ['a.example.com/x', 'b.example.com/y', 'c.example.com/z'] },
  spec: {
    replicas: 1, selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        initContainers: [{ name: 'init-a', image: 'busybox:1' }, { name: 'init-b', image: 'busybox:1' }],
        containers: [{
          name: 'app', image: 'trellis/sample-http:0.1.0',
          ports: [{ containerPort: 8080, name: 'http' }],
          volumeMounts: [{ name: 'data', mountPath: '/data' }, { name: 'cfg', mountPath: '/etc/cfg' }],
          env: [{ name: 'A', value: '1' }],
        }],
        volumes: [{ name: 'data', emptyDir: {} }, { name: 'old', emptyDir: {} }, { name: 'cfg', emptyDir: {} }],
        hostAliases: [{ ip: '10.0.0.1', hostnames: ['one'] }],
        imagePullSecrets: [{ name: 'reg-a' }],
        tolerations: [{ key: 'k1', operator: 'Exists' }, { key: 'k2', operator: 'Exists' }],
      },
    },
  },
};

describeStores('API strategic merge patch', (kind) => {
  before(async () => { t = await startTestServer({ store: kind }); });
  after(async () => { await t?.stop(); });

  test('lists merge by their patchMergeKey; atomic lists are replaced; directives apply', async () => {
    const s = t.server;
    const base = '/apis/apps/v1/namespaces/default/deployments';
    assert.equal((await call(s, 'POST', base, deployment)).status, 201);
    const r = await call(s, 'PATCH', `${base}/web`, {
      metadata: { '$deleteFromPrimitiveList/finalizers': ['b.example.com/y'] },
      spec: { template: { spec: {
        initContainers: [{ name: 'init-b', image: 'busybox:2' }],
        containers: [{
          name: 'app',
          ports: [{ containerPort: 9090, name: 'metrics' }],
          volumeMounts: [{ mountPath: '/etc/cfg', readOnly: true }, { name: 'tmp', mountPath: '/tmp' }],
        }],
        volumes: [{ name: 'tmp', emptyDir: {} }, { name: 'old', $patch: 'delete' }],
        hostAliases: [{ ip: '10.0.0.2', hostnames: ['two'] }, { ip: '10.0.0.1', hostnames: ['uno'] }],
        imagePullSecrets: [{ name: 'reg-b' }],
        tolerations: [{ key: 'k3', operator: 'Exists' }],
      } } },
    }, SMP);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const d = r.body;
    const pod = d.spec.template.spec;
    const app = pod.containers[0];
    assert.deepEqual(d.metadata.finalizers, ['a.example.com/x', 'c.example.com/z'], '$deleteFromPrimitiveList');
    assert.deepEqual(pod.initContainers.map((c: any) => `${c.name}=${c.image}`), ['init-a=busybox:1', 'init-b=busybox:2'], 'initContainers by name');
    assert.deepEqual(app.ports.map((p: any) => p.containerPort), [8080, 9090], 'container ports by containerPort');
    assert.equal(app.image, 'trellis/sample-http:0.1.0');
    assert.deepEqual(app.env, [{ name: 'A', value: '1' }]);
    assert.deepEqual(app.volumeMounts, [{ name: 'data', mountPath: '/data' }, { name: 'cfg', mountPath: '/etc/cfg', readOnly: true }, { name: 'tmp', mountPath: '/tmp' }], 'volumeMounts by mountPath');
    assert.deepEqual(pod.volumes.map((v: any) => v.name), ['data', 'cfg', 'tmp'], 'volumes by name, with $patch: delete');
    assert.deepEqual(pod.hostAliases, [{ ip: '10.0.0.1', hostnames: ['uno'] }, { ip: '10.0.0.2', hostnames: ['two'] }], 'hostAliases by ip');
    assert.deepEqual(pod.imagePullSecrets, [{ name: 'reg-a' }, { name: 'reg-b' }], 'imagePullSecrets by name');
    assert.deepEqual(pod.tolerations, [{ key: 'k3', operator: 'Exists' }], 'tolerations have no merge key: replaced');

    // $setElementOrder orders a merged list (here finalizers) as kubectl's patches do.
    const ordered = await call(s, 'PATCH', `${base}/web`, { metadata: { '$setElementOrder/finalizers': ['c.example.com/z', 'a.example.com/x'] } }, SMP);
    assert.deepEqual(ordered.body.metadata.finalizers, ['c.example.com/z', 'a.example.com/x']);
    // $retainKeys keeps only the listed keys of a map.
    const retained = await call(s, 'PATCH', `${base}/web`, { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } } }, SMP);
    assert.equal(retained.status, 200, JSON.stringify(retained.body));
    assert.deepEqual(retained.body.spec.strategy, { type: 'Recreate' });
    // An element without its merge key is refused.
    const noKey = await call(s, 'PATCH', `${base}/web`, { spec: { template: { spec: { containers: [{ image: 'x' }] } } } }, SMP);
    assert.equal(noKey.status, 400);
    assert.match(noKey.body.message, /does not contain declared merge key: name/);
    await call(s, 'PATCH', `${base}/web`, { metadata: { finalizers: null } }, SMP);
    await call(s, 'DELETE', `${base}/web`);
  });

  test('node status addresses merge by type; Service ports by port', async () => {
    const s = t.server;
    const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, status: { addresses: [{ type: 'InternalIP', address: '10.1.0.1' }, { type: 'Hostname', address: 'n1' }] } };
    assert.equal((await call(s, 'POST', '/api/v1/nodes', node)).status, 201);
    await call(s, 'PUT', '/api/v1/nodes/n1/status', { ...(await call(s, 'GET', '/api/v1/nodes/n1')).body, status: node.status });
    const n = await call(s, 'PATCH', '/api/v1/nodes/n1/status', { status: { addresses: [{ type: 'InternalIP', address: '10.1.0.9' }] } }, SMP);
    assert.equal(n.status, 200, JSON.stringify(n.body));
    assert.deepEqual(n.body.status.addresses, [{ type: 'InternalIP', address: '10.1.0.9' }, { type: 'Hostname', address: 'n1' }]);

    const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'ports' }, spec: { selector: { app: 'x' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } };
    assert.equal((await call(s, 'POST', '/api/v1/namespaces/default/services', svc)).status, 201);
    const p = await call(s, 'PATCH', '/api/v1/namespaces/default/services/ports', { spec: { ports: [{ name: 'https', port: 443, targetPort: 8443 }, { port: 80, targetPort: 9090 }] } }, SMP);
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.deepEqual(p.body.spec.ports.map((x: any) => `${x.name}:${x.port}->${x.targetPort}`), ['http:80->9090', 'https:443->8443']);
  });
});
