// /metrics: kube-apiserver's apiserver_request_total and apiserver_request_duration_seconds
// by verb, resource, scope and code, readable by those RBAC lets get /metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestServer, watch, type TestServer } from './helpers.js';

let t: TestServer;
before(async () => { t = await startTestServer({ memory: true }); });
after(async () => { await t?.stop(); });

/** The value of one sample, its labels given as a subset; 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...m[2].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return 0;
}

test('apiserver_request_total and apiserver_request_duration_seconds count requests by verb, resource, scope and code', async () => {
  const s = t.server;
  const base = '/api/v1/namespaces/default/configmaps';
  for (let i = 0; i < 3; i++) assert.equal((await call(s, 'POST', base, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `m${i}` } })).status, 201);
  assert.equal((await call(s, 'POST', base, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'm0' } })).status, 409);
  assert.equal((await call(s, 'GET', `${base}/nope`)).status, 404);
  assert.equal((await call(s, 'GET', base)).status, 200);
  assert.equal((await call(s, 'PATCH', `/apis/apps/v1/namespaces/default/deployments/x`, { metadata: { name: 'x' } }, { contentType: 'application/apply-patch+yaml' })).status !== 0, true);
  const w = watch(s, `${base}?watch=1&timeoutSeconds=1`);
  assert.equal(await w.status, 200);
  const during = String((await call(s, 'GET', '/metrics')).body);
  assert.equal(sample(during, 'apiserver_longrunning_requests', { resource: 'configmaps', verb: 'WATCH', scope: 'namespace' }), 1, 'an open watch is long-running');
  await w.ended;

  const r = await call(s, 'GET', '/metrics', undefined, { accept: 'text/plain' });
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain/);
  const m = String(r.body);
  const cm = { group: '', version: 'v1', resource: 'configmaps', component: 'apiserver' };
  assert.equal(sample(m, 'apiserver_request_total', { ...cm, verb: 'POST', scope: 'namespace', code: '201' }), 3);
  assert.equal(sample(m, 'apiserver_request_total', { ...cm, verb: 'POST', code: '409' }), 1);
  assert.equal(sample(m, 'apiserver_request_total', { ...cm, verb: 'GET', scope: 'resource', code: '404' }), 1);
  assert.equal(sample(m, 'apiserver_request_total', { ...cm, verb: 'LIST', code: '200' }), 1);
  assert.equal(sample(m, 'apiserver_request_total', { ...cm, verb: 'WATCH', code: '200' }), 1);
  assert.equal(sample(m, 'apiserver_request_total', { group: 'apps', resource: 'deployments', verb: 'APPLY' }), 1);
  assert.equal(sample(m, 'apiserver_request_duration_seconds_count', { ...cm, verb: 'POST', scope: 'namespace' }), 4);
  assert.equal(sample(m, 'apiserver_request_duration_seconds_bucket', { ...cm, verb: 'POST', le: '+Inf' }), 4);
  assert.equal(sample(m, 'apiserver_request_duration_seconds_count', { ...cm, verb: 'WATCH' }), 0, 'long-running watches are not in the latency histogram');
  assert.ok(sample(m, 'apiserver_request_duration_seconds_sum', { ...cm, verb: 'LIST' }) > 0);
  assert.equal(sample(m, 'apiserver_longrunning_requests', { resource: 'configmaps', verb: 'WATCH', scope: 'namespace' }), 0, 'and no longer once it ended');

  // /metrics is a non-resource URL under RBAC: a user without get on it is refused.
  const sa = await call(s, 'POST', '/api/v1/namespaces/default/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'scraper' } });
  assert.equal(sa.status, 201);
  const tok = await call(s, 'POST', '/api/v1/namespaces/default/serviceaccounts/scraper/token', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: {} });
  const denied = await call(s, 'GET', '/metrics', undefined, { token: tok.body.status.token });
  assert.equal(denied.status, 403);
  const after403 = String((await call(s, 'GET', '/metrics')).body);
  assert.ok(sample(after403, 'apiserver_request_total', { verb: 'GET', resource: '', code: '403' }) >= 1, 'the refused scrape is counted too');
});
