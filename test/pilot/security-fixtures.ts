// The security golden set (test/pilot/fixtures/security): PeerAuthentication,
// DestinationRule tls and AuthorizationPolicy inputs with their expected resources.
import { goldenSet } from './golden.js';

export const { loadInputs, assertGolden } = goldenSet('security');
