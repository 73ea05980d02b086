// Kinds without much server logic: discovery, RBAC, coordination, admission registration,
// and the virtual TokenReview.
import type { StatusCause } from '../../../api/kube/types.js';
import { fieldInvalid, fieldNotSupported, fieldRequired } from '../errors.js';
import { childArray, getPath, isObj, type Json } from '../util.js';
import type { KindInfo } from '../registry/types.js';
import type { Authenticator } from '../authn.js';
import { kind } from './common.js';

function webhookDefaults(cfg: Json, mutating: boolean): void {
  for (const w of childArray(cfg, 'webhooks')) {
    if (!isObj(w)) continue;
    w.failurePolicy ??= 'Fail';
    w.matchPolicy ??= 'Equivalent';
    w.namespaceSelector ??= {};
    w.objectSelector ??= {};
    w.timeoutSeconds ??= 10;
    if (mutating) w.reinvocationPolicy ??= 'Never';
    for (const r of childArray(w, 'rules')) if (isObj(r)) r.scope ??= '*';
    const svc = getPath(w, 'clientConfig.service');
    if (isObj(svc)) svc.port ??= 443;
  }
}

function validateWebhooks(cfg: Json): StatusCause[] {
  const errs: StatusCause[] = [];
  const names = new Set<string>();
  childArray(cfg, 'webhooks').forEach((w, i) => {
    const p = `webhooks[${i}]`;
    if (!isObj(w)) return;
    if (typeof w.name !== 'string' || !w.name.includes('.')) errs.push(fieldInvalid(`${p}.name`, w.name, 'should be a domain with at least three segments separated by dots'));
    else if (names.has(w.name)) errs.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: "${w.name}"`, field: `${p}.name` });
    else names.add(w.name);
    const cc = w.clientConfig;
    const hasUrl = isObj(cc) && typeof cc.url === 'string';
    const hasSvc = isObj(cc) && isObj(cc.service);
    if (hasUrl === hasSvc) errs.push(fieldRequired(`${p}.clientConfig`));
    if (hasUrl && isObj(cc) && !String(cc.url).startsWith('https://')) errs.push(fieldInvalid(`${p}.clientConfig.url`, cc.url, "'https' is the only allowed URL scheme"));
    if (!['None', 'NoneOnDryRun'].includes(String(w.sideEffects))) errs.push(fieldNotSupported(`${p}.sideEffects`, w.sideEffects, ['None', 'NoneOnDryRun']));
    if (!Array.isArray(w.admissionReviewVersions) || !w.admissionReviewVersions.includes('v1')) {
      errs.push(fieldInvalid(`${p}.admissionReviewVersions`, w.admissionReviewVersions, 'must include at least one of v1'));
    }
    if (!['Fail', 'Ignore'].includes(String(w.failurePolicy))) errs.push(fieldNotSupported(`${p}.failurePolicy`, w.failurePolicy, ['Fail', 'Ignore']));
  });
  return errs;
}

export function miscKinds(authn: Authenticator): KindInfo[] {
  return [
    kind({ group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', kind: 'EndpointSlice',
      strategy: {
        validate(s) {
          return ['IPv4', 'IPv6', 'FQDN'].includes(String(s.addressType)) ? [] : [fieldNotSupported('addressType', s.addressType, ['IPv4', 'IPv6', 'FQDN'])];
        },
      } }),
    kind({ group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'roles', kind: 'Role' }),
    kind({ group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'rolebindings', kind: 'RoleBinding' }),
    kind({ group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles', kind: 'ClusterRole', namespaced: false }),
    kind({ group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterrolebindings', kind: 'ClusterRoleBinding', namespaced: false }),
    kind({ group: 'admissionregistration.k8s.io', version: 'v1', resource: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false,
      categories: ['api-extensions'], strategy: { defaults: (c) => webhookDefaults(c, true), validate: validateWebhooks } }),
    kind({ group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingwebhookconfigurations', kind: 'ValidatingWebhookConfiguration', namespaced: false,
      categories: ['api-extensions'], strategy: { defaults: (c) => webhookDefaults(c, false), validate: validateWebhooks } }),
    kind({ group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease' }),
    kind({ group: 'authentication.k8s.io', version: 'v1', resource: 'tokenreviews', kind: 'TokenReview', namespaced: false, verbs: ['create'],
      strategy: {
        async virtualCreate(review) {
          const token = getPath(review, 'spec.token');
          const requested = getPath(review, 'spec.audiences');
          const audiences = Array.isArray(requested) && requested.length > 0 ? requested.map(String) : authn.apiAudiences;
          const status: Json = { authenticated: false };
          if (typeof token === 'string' && token !== '') {
            const r = await authn.authenticate(token, audiences);
            if (r.user) {
              status.authenticated = true;
              status.user = { username: r.user.username, uid: r.user.uid, groups: r.user.groups, extra: r.user.extra };
              status.audiences = r.audiences;
            } else status.error = r.error;
          } else status.error = 'token is empty';
          return { ...review, status };
        },
      } }),
    // `kubectl auth whoami`: the caller's own user info, however it authenticated.
    kind({ group: 'authentication.k8s.io', version: 'v1', resource: 'selfsubjectreviews', kind: 'SelfSubjectReview', namespaced: false, verbs: ['create'],
      strategy: {
        async virtualCreate(review, ctx) {
          const u = ctx.user;
          return { ...review, status: { userInfo: { username: u.username, uid: u.uid, groups: u.groups, extra: u.extra } } };
        },
      } }),
  ];
}
