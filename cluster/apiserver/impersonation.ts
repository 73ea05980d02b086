// User impersonation (Impersonate-User / -Group / -Uid headers, as `kubectl --as`), checked
// like kube-apiserver's WithImpersonation filter: the caller needs the `impersonate` verb on
// users, groups or serviceaccounts; the request then runs as the impersonated user.
import type { IncomingMessage } from 'node:http';
import type { UserInfo } from './authn.js';
import { forbiddenError, type Attributes, type Authorizer } from './authz.js';
import { badRequest } from './errors.js';

const SA_PREFIX = 'system:serviceaccount:';

function headerValues(req: IncomingMessage, name: string): string[] {
  const v = req.headers[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x !== '');
}

function impersonateAttrs(resource: string, name: string, namespace = '', apiGroup = ''): Attributes {
  return { verb: 'impersonate', apiGroup, apiVersion: '', resource, subresource: '', namespace, name, resourceRequest: true, path: '' };
}

/** The user the request runs as: the caller, or whom it impersonates (after checking it may). */
export async function impersonate(req: IncomingMessage, caller: UserInfo, authorize: Authorizer): Promise<UserInfo> {
  const [username] = headerValues(req, 'impersonate-user');
  const groups = headerValues(req, 'impersonate-group');
  const [uid] = headerValues(req, 'impersonate-uid');
  if (!username) {
    if (groups.length || uid) throw badRequest('requested impersonation of groups or uid without impersonating a user');
    return caller;
  }
  const checks: Attributes[] = [];
  let impliedGroups: string[] = [];
  if (username.startsWith(SA_PREFIX)) {
    const [ns, name] = username.slice(SA_PREFIX.length).split(':');
    checks.push(impersonateAttrs('serviceaccounts', name ?? '', ns ?? ''));
    if (groups.length === 0) impliedGroups = ['system:serviceaccounts', `system:serviceaccounts:${ns}`];
  } else checks.push(impersonateAttrs('users', username));
  for (const g of groups) checks.push(impersonateAttrs('groups', g));
  if (uid) checks.push(impersonateAttrs('uids', uid, '', 'authentication.k8s.io'));
  for (const a of checks) {
    const d = await authorize(caller, a);
    if (!d.allowed) throw forbiddenError(caller, a, d.reason);
  }
  const all = [...groups, ...impliedGroups];
  if (username !== 'system:anonymous' && !all.includes('system:authenticated')) all.push('system:authenticated');
  return { username, uid, groups: all };
}
