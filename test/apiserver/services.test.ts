import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestServer, type TestServer } from './helpers.js';

let t: TestServer;
before(async () => { t = await startTestServer({ memory: true }); });
after(async () => { await t?.stop(); });

const svc = (name: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80 }], ...spec },
});

test('ClusterIP allocation: unique, inside the range, never .0/.1/.10 unless asked', async () => {
  const s = t.server;
  const ips = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const r = await call(s, 'POST', '/api/v1/namespaces/default/services', svc(`s${i}`));
    assert.equal(r.status, 201);
    const ip = r.body.spec.clusterIP;
    assert.match(ip, /^10\.96\.\d+\.\d+$/);
    assert.ok(!['10.96.0.0', '10.96.0.1', '10.96.0.10'].includes(ip));
    assert.ok(!ips.has(ip), 'no duplicates');
    ips.add(ip);
    assert.deepEqual(r.body.spec.clusterIPs, [ip]);
    assert.equal(r.body.spec.type, 'ClusterIP');
    assert.equal(r.body.spec.ports[0].protocol, 'TCP');
    assert.equal(r.body.spec.ports[0].targetPort, 80);
  }
});

test('explicit ClusterIP: honoured when free, 422 when taken or out of range; headless', async () => {
  const s = t.server;
  const dns = await call(s, 'POST', '/api/v1/namespaces/default/services', svc('kube-dns', { clusterIP: '10.96.0.10' }));
  assert.equal(dns.body.spec.clusterIP, '10.96.0.10');
  const taken = await call(s, 'POST', '/api/v1/namespaces/default/services', svc('dup', { clusterIP: '10.96.0.10' }));
  assert.equal(taken.status, 422);
  assert.match(taken.body.message, /already allocated/);
  const outside = await call(s, 'POST', '/api/v1/namespaces/default/services', svc('out', { clusterIP: '10.97.0.5' }));
  assert.equal(outside.status, 422);
  const kube = await call(s, 'POST', '/api/v1/namespaces/default/services', svc('k', { clusterIP: '10.96.0.1' }));
  assert.equal(kube.status, 422, '.1 belongs to the kubernetes Service');
  const headless = await call(s, 'POST', '/api/v1/namespaces/default/services', svc('hl', { clusterIP: 'None' }));
  assert.equal(headless.body.spec.clusterIP, 'None');
});

test('clusterIP is immutable; omitted on update it is kept; deletion frees it', async () => {
  const s = t.server;
  const created = (await call(s, 'POST', '/api/v1/namespaces/default/services', svc('imm'))).body;
  const change = structuredClone(created);
  change.spec.clusterIP = '10.96.200.200';
  change.spec.clusterIPs = ['10.96.200.200'];
  const r = await call(s, 'PUT', '/api/v1/namespaces/default/services/imm', change);
  assert.equal(r.status, 422);
  assert.equal(r.body.details.causes[0].field, 'spec.clusterIP');
  const omit = structuredClone(created);
  delete omit.spec.clusterIP;
  delete omit.spec.clusterIPs;
  omit.spec.ports = [{ port: 81 }];
  const ok = await call(s, 'PUT', '/api/v1/namespaces/default/services/imm', omit);
  assert.equal(ok.status, 200);
  assert.equal(ok.body.spec.clusterIP, created.spec.clusterIP);
  await call(s, 'DELETE', '/api/v1/namespaces/default/services/imm');
  const reuse = await call(s, 'POST', '/api/v1/namespaces/default/services', svc('reuse', { clusterIP: created.spec.clusterIP }));
  assert.equal(reuse.status, 201);
});
