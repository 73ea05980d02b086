export { startApiServer, type ApiServer, type ApiServerOptions, type ListenAddress } from './server.js';
export type { Authorizer, Attributes, Decision, AuthorizationMode } from './authz.js';
export type { UserInfo } from './authn.js';
export type { PodLogHandler } from './context.js';
export { issueServingCert } from './pki.js';
