// `trellis analyze [-n namespace | -A]`: the cross-reference problems pilot also writes into
// VirtualService status (a route to a missing host or subset, weight on a subset without
// ready endpoints), read live from the cluster and printed in istioctl's format. Exits 79
// (istioctl's code) when an Error is found, 0 otherwise.
import { KubeClient, R, type KubeObject, type ResourceRef, type Secret } from '../api/kube/index.js';
import { isCredentialSecret } from '../pilot/model/gateway-tls.js';
import type { ConfigInputs } from '../pilot/model/inputs.js';
import { analyze, formatMessage } from '../pilot/analysis/analyze.js';
import { endpointsFromSlices, type EndpointSlice } from '../pilot/model/endpoint-slices.js';
import { type ParsedArgs } from './args.js';
import { kubeconfigFlag } from './proxy-status.js';

export const ANALYZE_ERRORS_EXIT = 79;

/** Lists a kind; a CRD not installed (404) or only served as v1beta1 is handled. */
async function listKind<T extends KubeObject>(client: KubeClient, r: ResourceRef, fallbackVersion?: string): Promise<T[]> {
  try {
    return (await client.list<T>(r)).items;
  } catch (e) {
    if (!/404|not found/i.test((e as Error).message)) throw e;
    if (fallbackVersion) return listKind<T>(client, { ...r, version: fallbackVersion });
    return [];
  }
}

/** Endpoints as pilot sees them: from EndpointSlices where served, else from Endpoints. */
async function loadEndpoints(client: KubeClient): Promise<KubeObject[]> {
  try {
    return endpointsFromSlices((await client.list<EndpointSlice>(R.endpointSlices)).items);
  } catch (e) {
    if (!/404|not found/i.test((e as Error).message)) throw e;
    return listKind(client, R.endpoints);
  }
}

export async function loadInputs(client: KubeClient): Promise<ConfigInputs> {
  const serviceEntries = { group: 'networking.istio.io', version: 'v1', resource: 'serviceentries', kind: 'ServiceEntry', namespaced: true };
  const [namespaces, services, endpoints, pods, virtualServices, destinationRules, entries] = await Promise.all([
    listKind(client, R.namespaces), listKind(client, R.services), loadEndpoints(client), listKind(client, R.pods),
    listKind(client, R.virtualServices, 'v1beta1'), listKind(client, R.destinationRules, 'v1beta1'), listKind(client, serviceEntries, 'v1beta1'),
  ]);
  const gateways = await listKind(client, R.gateways, 'v1beta1');
  // Secrets decide whether a Gateway's credentialName exists; without the right to read them it is not checked.
  const secrets = await listKind<Secret>(client, R.secrets).then((l) => l.filter(isCredentialSecret), () => undefined);
  return { namespaces, services, endpoints, pods, virtualServices, destinationRules, serviceEntries: entries, gateways, secrets } as unknown as ConfigInputs;
}

/** Runs the analysis; returns the exit code. */
export async function analyzeCommand(args: ParsedArgs): Promise<number> {
  const all = args.flags.get('A') === true || args.flags.get('all-namespaces') === true;
  const nsFlag = args.flags.get('n') ?? args.flags.get('namespace');
  if (nsFlag === true) throw new Error('analyze: -n needs a namespace');
  const namespace = nsFlag ?? 'default';
  const client = KubeClient.fromKubeconfig(kubeconfigFlag(args), 'trellis-cli');
  let inputs: ConfigInputs;
  try { inputs = await loadInputs(client); } finally { await client.close(); }
  const messages = analyze(inputs).filter((m) => all || m.resource.namespace === namespace);
  const where = all ? 'all namespaces' : `namespace: ${namespace}`;
  if (!messages.length) {
    console.log(`✔ No validation issues found when analyzing ${where}.`);
    return 0;
  }
  for (const m of messages) console.log(formatMessage(m));
  return messages.some((m) => m.level === 'Error') ? ANALYZE_ERRORS_EXIT : 0;
}
