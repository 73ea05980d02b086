// Mesh-wide security settings of a snapshot (the parts of Istio's MeshConfig pilot reads).

export interface SecurityOptions {
  /**
   * Istio's MeshConfig.rootNamespace: PeerAuthentications and AuthorizationPolicies here
   * without a selector apply to the whole mesh. Pilot's own namespace by default.
   */
  rootNamespace: string;
  /**
   * Emit the mTLS and authorization config (TLS filter chains, transport sockets, RBAC
   * filters). Off, the security kinds are still read and checked, but the proxies get
   * plaintext config: for proxies that cannot speak TLS yet (they would NACK it).
   */
  enabled: boolean;
  /** SPIFFE trust domain of the mesh's identities. */
  trustDomain: string;
}

export const DEFAULT_ROOT_NAMESPACE = 'trellis-system';

export function securityOptions(o: Partial<SecurityOptions> | undefined): SecurityOptions {
  return {
    rootNamespace: o?.rootNamespace || DEFAULT_ROOT_NAMESPACE,
    enabled: o?.enabled ?? false,
    trustDomain: o?.trustDomain || 'cluster.local',
  };
}
