// Authorization hook. RBAC enforcement is a later issue: for now every authenticated user
// is allowed, but every request passes through here with Kubernetes' attribute shape.
import type { UserInfo } from './authn.js';

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

export const allowAuthenticated: Authorizer = () => ({ allowed: true });

export function forbiddenMessage(user: UserInfo, a: Attributes, reason?: string): string {
  const res = a.apiGroup ? `${a.resource}.${a.apiGroup}` : a.resource;
  const what = a.resourceRequest
    ? `cannot ${a.verb} resource "${a.subresource ? `${a.resource}/${a.subresource}` : a.resource}" in API group "${a.apiGroup}"${a.namespace ? ` in the namespace "${a.namespace}"` : ' at the cluster scope'}`
    : `cannot ${a.verb} path "${a.path}"`;
  return `${a.name ? `${res} "${a.name}"` : res} is forbidden: User "${user.username}" ${what}${reason ? `: ${reason}` : ''}`;
}
