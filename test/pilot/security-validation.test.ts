// Apply-time validation of PeerAuthentication and AuthorizationPolicy: Kubernetes-style field
// errors for bad input, valid istio.io examples admitted, and the webhook's review of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateAuthorizationPolicy, validatePeerAuthentication } from '../../pilot/validation/security.js';
import { review } from '../../pilot/validation/webhook.js';

const fields = (errs: { field: string; message: string }[]): string[] => errs.map((e) => `${e.field}: ${e.message}`);

test('PeerAuthentication: istio.io examples pass; bad mode, port-level without selector, bad port and unknown fields fail', () => {
  assert.deepEqual(validatePeerAuthentication({ mtls: { mode: 'STRICT' } }), []);
  assert.deepEqual(validatePeerAuthentication(undefined), []);
  assert.deepEqual(validatePeerAuthentication({ selector: { matchLabels: { app: 'finance' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { 8080: { mode: 'DISABLE' } } }), []);
  assert.deepEqual(fields(validatePeerAuthentication({ mtls: { mode: 'STRICTER' } })), ["spec.mtls.mode: 'STRICTER' is not a mode (UNSET, DISABLE, PERMISSIVE, STRICT)"]);
  assert.deepEqual(fields(validatePeerAuthentication({ portLevelMtls: { 8080: { mode: 'DISABLE' } } })), ['spec.portLevelMtls: requires spec.selector with at least one label (port-level settings only apply to selected workloads)']);
  assert.deepEqual(fields(validatePeerAuthentication({ selector: { matchLabels: { app: 'a' } }, portLevelMtls: { http: { mode: 'DISABLE' }, 70000: { mode: 'X' } }, mtsl: {} })), [
    'spec.mtsl: unknown field',
    "spec.portLevelMtls[70000]: '70000' is not a port number 1-65535",
    "spec.portLevelMtls[70000].mode: 'X' is not a mode (UNSET, DISABLE, PERMISSIVE, STRICT)",
    "spec.portLevelMtls[http]: 'http' is not a port number 1-65535",
  ]);
});

test('AuthorizationPolicy: istio.io examples pass; bad action, principals, ipBlocks, ports, keys and empty parts fail', () => {
  assert.deepEqual(validateAuthorizationPolicy({
    selector: { matchLabels: { app: 'httpbin', version: 'v1' } }, action: 'ALLOW',
    rules: [{
      from: [{ source: { principals: ['cluster.local/ns/default/sa/curl'] } }, { source: { namespaces: ['dev'] } }],
      to: [{ operation: { methods: ['GET'], paths: ['/info*'] } }],
      when: [{ key: 'request.auth.claims[iss]', values: ['https://accounts.google.com'] }],
    }],
  }), []);
  assert.deepEqual(validateAuthorizationPolicy({}), [], 'allow-nothing');
  assert.deepEqual(validateAuthorizationPolicy({ action: 'DENY', rules: [{ from: [{ source: { notIpBlocks: ['10.0.0.0/8', '192.168.1.1'] } }] }] }), []);
  assert.deepEqual(fields(validateAuthorizationPolicy({ action: 'REJECT' })), ["spec.action: 'REJECT' is not an action (ALLOW, DENY, AUDIT, CUSTOM)"]);
  assert.deepEqual(fields(validateAuthorizationPolicy({ action: 'CUSTOM' })), ['spec.provider.name: required when action is CUSTOM']);
  assert.deepEqual(fields(validateAuthorizationPolicy({
    rules: [
      { from: [{ source: { principals: ['cluster.local/ns/*/sa/x', ''], ipBlocks: ['10.0.0.0/33', 'not-an-ip'] } }] },
      { to: [{ operation: { ports: ['http', '8080'] } }], when: [{ key: 'source.ipp', values: ['1.2.3.4'] }, { key: 'destination.port' }] },
      { from: [{ source: {} }], to: [] },
    ],
  })), [
    "spec.rules[0].from[0].source.principals[0]: 'cluster.local/ns/*/sa/x' may use '*' only as a prefix or a suffix",
    'spec.rules[0].from[0].source.principals[1]: must be a non-empty string',
    "spec.rules[0].from[0].source.ipBlocks[0]: '10.0.0.0/33' is not an IP address or CIDR",
    "spec.rules[0].from[0].source.ipBlocks[1]: 'not-an-ip' is not an IP address or CIDR",
    "spec.rules[1].to[0].operation.ports[0]: 'http' is not a port number 1-65535",
    "spec.rules[1].when[0].key: 'source.ipp' is not a supported attribute",
    'spec.rules[1].when[1]: at least one of values or notValues must be set',
    'spec.rules[2].from[0].source: must set at least one field',
    'spec.rules[2].to: must be a non-empty list when set',
  ]);
});

test('the webhook validates security.istio.io objects and names the object in its message', () => {
  const req = (kind: string, spec: unknown) => ({ uid: 'u1', kind: { group: 'security.istio.io', kind }, operation: 'CREATE', object: { metadata: { name: 'p', namespace: 'foo' }, spec } });
  assert.deepEqual(review(req('PeerAuthentication', { mtls: { mode: 'STRICT' } })), { uid: 'u1', allowed: true });
  const denied = review(req('AuthorizationPolicy', { action: 'ALLOWED' }));
  assert.equal(denied.allowed, false);
  assert.equal(denied.status?.code, 422);
  assert.equal(denied.status?.message, "AuthorizationPolicy foo/p is invalid: spec.action: 'ALLOWED' is not an action (ALLOW, DENY, AUDIT, CUSTOM)");
});
