// The validation webhook through real HTTPS with its self-generated CA: valid objects are
// admitted, invalid ones denied with a message naming the object and the field paths.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { ValidationWebhook } from '../../pilot/validation/webhook.js';
import { validateDestinationRule, validateVirtualService } from '../../pilot/validation/validate.js';

const hook = new ValidationWebhook({ host: '127.0.0.1', port: 0 });
after(() => hook.stop());

function post(port: number, body: unknown): Promise<{ status: number; json: { response: { uid: string; allowed: boolean; status?: { message: string } } } }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/validate', method: 'POST', ca: hook.certificate.caCertPem, servername: 'istiod.trellis-system.svc', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

function admission(kind: string, name: string, spec: unknown) {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: `uid-${name}`, kind: { group: 'networking.istio.io', version: 'v1', kind }, operation: 'CREATE', namespace: 'default', object: { metadata: { name, namespace: 'default' }, spec } } };
}

test('webhook over HTTPS: a valid VirtualService is admitted, an invalid one denied with field paths', async () => {
  const port = await hook.start();
  const ok = await post(port, admission('VirtualService', 'good', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 80 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 20 }] }] }));
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.json.response, { uid: 'uid-good', allowed: true });
  const bad = await post(port, admission('VirtualService', 'bad', { hots: ['x'], http: [{ route: [{ destination: { host: 'reviews' }, weight: 80 }, { destination: { host: 'reviews' }, weight: 30 }] }] }));
  assert.equal(bad.json.response.allowed, false);
  const msg = bad.json.response.status?.message ?? '';
  assert.match(msg, /^VirtualService default\/bad is invalid: /);
  assert.match(msg, /spec\.hots: unknown field/);
  assert.match(msg, /spec\.hosts: at least one host is required/);
  assert.match(msg, /spec\.http\[0\]\.route: weights must sum to 100 across the destinations \(got 110\)/);
});

test('VirtualService field errors: negative weight, bad durations, bad regex, duplicate/empty hosts', () => {
  const errs = validateVirtualService({
    hosts: ['a', 'a', ''],
    http: [{
      match: [{ uri: { regex: '([a-z' } }, { headers: { 'X-Up': { exact: 'x' } } }, { uri: { regex: '(?=x)' } }],
      route: [{ destination: { host: 'a' }, weight: -5 }, { destination: { host: 'b' }, weight: 105 }],
      timeout: '10 seconds', retries: { attempts: 2, perTryTimeout: '0ms' },
    }],
  }).map((e) => `${e.field}: ${e.message}`);
  for (const want of [
    "spec.hosts[1]: duplicate host 'a'",
    'spec.hosts[2]: must be a non-empty host name',
    'spec.http[0].match[0].uri.regex',
    'spec.http[0].match[1].headers.X-Up: header names must be lowercase',
    'spec.http[0].match[2].uri.regex',
    'spec.http[0].route[0].weight: -5 must be a non-negative integer',
    "spec.http[0].timeout: '10 seconds' is not a duration",
    'spec.http[0].retries.perTryTimeout: must be at least 1ms',
  ]) assert.ok(errs.some((e) => e.startsWith(want)), `missing ${want} in\n${errs.join('\n')}`);
});

test('DestinationRule field errors: host, subsets, unknown policy fields, port-level port', () => {
  const errs = validateDestinationRule({
    trafficPolicy: { loadBalancer: { simple: 'FASTEST' }, outlierDetection: { interval: 'x', maxEjectionPercent: 150 }, portLevelSettings: [{ loadBalancer: { simple: 'RANDOM' } }], retry: {} },
    subsets: [{ name: 'v1' }, { name: 'v1' }, { labels: {} }],
  }).map((e) => `${e.field}: ${e.message}`);
  for (const want of [
    'spec.host: required', "spec.trafficPolicy.loadBalancer.simple: 'FASTEST'", 'spec.trafficPolicy.outlierDetection.interval',
    'spec.trafficPolicy.outlierDetection.maxEjectionPercent: must be between 0 and 100', 'spec.trafficPolicy.portLevelSettings[0].port.number',
    'spec.trafficPolicy.retry: unknown field', "spec.subsets[1].name: duplicate subset 'v1'", 'spec.subsets[2].name: required',
  ]) assert.ok(errs.some((e) => e.startsWith(want)), `missing ${want} in\n${errs.join('\n')}`);
  assert.deepEqual(validateDestinationRule({ host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }), []);
});
