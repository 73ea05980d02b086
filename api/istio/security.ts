// security.istio.io PeerAuthentication and AuthorizationPolicy, as written in YAML (camelCase).
// The fields Trellis reads are typed; validation (pilot/validation) knows the full field set.
import type { KubeObject } from '../kube/types.js';

export interface WorkloadSelector { matchLabels?: Record<string, string> }

export type MutualTlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerAuthenticationSpec {
  selector?: WorkloadSelector;
  mtls?: { mode?: MutualTlsMode };
  /** Keyed by the workload's (container) port number, as a string in YAML. */
  portLevelMtls?: Record<string, { mode?: MutualTlsMode }>;
}

export interface PeerAuthentication extends KubeObject { spec: PeerAuthenticationSpec }

export interface AuthzSource {
  principals?: string[]; notPrincipals?: string[];
  requestPrincipals?: string[]; notRequestPrincipals?: string[];
  namespaces?: string[]; notNamespaces?: string[];
  ipBlocks?: string[]; notIpBlocks?: string[];
  remoteIpBlocks?: string[]; notRemoteIpBlocks?: string[];
  serviceAccounts?: string[]; notServiceAccounts?: string[];
}

export interface AuthzOperation {
  hosts?: string[]; notHosts?: string[];
  ports?: string[]; notPorts?: string[];
  methods?: string[]; notMethods?: string[];
  paths?: string[]; notPaths?: string[];
}

export interface AuthzCondition { key: string; values?: string[]; notValues?: string[] }

export interface AuthzRule {
  from?: { source?: AuthzSource }[];
  to?: { operation?: AuthzOperation }[];
  when?: AuthzCondition[];
}

export type AuthzAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface AuthorizationPolicySpec {
  selector?: WorkloadSelector;
  targetRef?: unknown;
  targetRefs?: unknown[];
  action?: AuthzAction;
  provider?: { name?: string };
  rules?: AuthzRule[];
}

export interface AuthorizationPolicy extends KubeObject { spec: AuthorizationPolicySpec }

/** security.istio.io versions pilot looks for, preferred first. */
export const SECURITY_VERSIONS = ['v1', 'v1beta1'] as const;
