// Pilot's security translation: PeerAuthentication and AuthorizationPolicy inputs, inbound
// mTLS chains and RBAC filters, outbound automatic mTLS and DestinationRule tls.
import type { PushContext } from '../model/push-context.js';
import { authorizationWarnings } from './authorization.js';
import { peerAuthenticationWarnings } from './peer-authentication.js';

export { securityOptions, DEFAULT_ROOT_NAMESPACE, type SecurityOptions } from './options.js';
export { workloadMtls, portMode, type EffectiveMode } from './peer-authentication.js';
export { rbacRules, policiesFor } from './authorization.js';

/** What the author of a security policy should learn about it (kept in the snapshot's warnings). */
export function securityWarnings(push: PushContext): string[] {
  return [...peerAuthenticationWarnings(push), ...authorizationWarnings(push)];
}
