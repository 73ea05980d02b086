// Authorization: every request passes through an Authorizer with Kubernetes' attribute
// shape (k8s.io/apiserver/pkg/authorization/authorizer). The server picks RBAC (default)
// or AlwaysAllow; see rbac/authorizer.ts.
import type { UserInfo } from './authn.js';
import type { RequestInfo } from './requestinfo.js';
import { ApiError } from './errors.js';

export interface Attributes {
  verb: string;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  resourceRequest: boolean;
  path: string;
}

export interface Decision { allowed: boolean; reason?: string }

export type Authorizer = (user: UserInfo, attrs: Attributes) => Promise<Decision> | Decision;

export type AuthorizationMode = 'RBAC' | 'AlwaysAllow';

export const allowAuthenticated: Authorizer = () => ({ allowed: true });

/** The attributes of a request. A Namespace is authorized within itself, as in Kubernetes. */
export function attributesOf(info: RequestInfo): Attributes {
  if (!info.resourceRequest) {
    return { verb: info.verb, apiGroup: '', apiVersion: '', resource: '', subresource: '', namespace: '', name: '', resourceRequest: false, path: info.path };
  }
  const namespace = info.resource === 'namespaces' && info.apiPrefix === 'api' ? info.name : info.namespace;
  return {
    verb: info.verb, apiGroup: info.group, apiVersion: info.version, resource: info.resource, subresource: info.subresource,
    namespace, name: info.name, resourceRequest: true, path: info.path,
  };
}

/** Kubernetes' wording: `pods "x" is forbidden: User "u" cannot get resource "pods" in API group "" in the namespace "n"`. */
export function forbiddenMessage(user: UserInfo, a: Attributes, reason?: string): string {
  if (!a.resourceRequest) return `forbidden: User "${user.username}" cannot ${a.verb} path "${a.path}"${reason ? `: ${reason}` : ''}`;
  const res = a.apiGroup ? `${a.resource}.${a.apiGroup}` : a.resource;
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? ` in the namespace "${a.namespace}"` : ' at the cluster scope';
  return `${a.name ? `${res} "${a.name}"` : res} is forbidden: User "${user.username}" cannot ${a.verb} resource "${resource}" in API group "${a.apiGroup}"${scope}${reason ? `: ${reason}` : ''}`;
}

export function forbiddenError(user: UserInfo, a: Attributes, reason?: string): ApiError {
  const details = a.resourceRequest ? { name: a.name || undefined, group: a.apiGroup, kind: a.resource } : undefined;
  return new ApiError(403, 'Forbidden', forbiddenMessage(user, a, reason), details);
}

export async function authorizeRequest(authorize: Authorizer, user: UserInfo, info: RequestInfo): Promise<void> {
  const a = attributesOf(info);
  const d = await authorize(user, a);
  if (!d.allowed) throw forbiddenError(user, a, d.reason);
}
