// The raw inputs a snapshot is folded from: plain lists of Kubernetes and Istio objects.
// The informer layer fills this; tests build it by hand.
import type { Endpoints, Namespace, Pod, Secret, Service } from '../../api/kube/index.js';
import type { AuthorizationPolicy, DestinationRule, Gateway, PeerAuthentication, ServiceEntry, Sidecar, VirtualService } from '../../api/istio/index.js';

export interface ConfigInputs {
  namespaces: Namespace[];
  services: Service[];
  endpoints: Endpoints[];
  pods: Pod[];
  virtualServices: VirtualService[];
  destinationRules: DestinationRule[];
  /** Optional so hand-built inputs without gateways stay valid. */
  gateways?: Gateway[];
  /** security.istio.io; optional so inputs built before they existed stay valid. */
  peerAuthentications?: PeerAuthentication[];
  authorizationPolicies?: AuthorizationPolicy[];
  serviceEntries?: ServiceEntry[];
  sidecars?: Sidecar[];
  /** Secrets that may hold gateway credentials (credentialName); optional like the kinds above. */
  secrets?: Secret[];
}

export function emptyInputs(): ConfigInputs {
  return { namespaces: [], services: [], endpoints: [], pods: [], virtualServices: [], destinationRules: [], peerAuthentications: [], authorizationPolicies: [] };
}
