// Cross-reference analysis of the traffic config, for problems that cannot be rejected at
// apply time because they depend on other objects (which may arrive later): a route to a
// host no service (or ServiceEntry) has, to a subset no DestinationRule defines, or a
// weight on a subset with no ready endpoints. Istio's codes and message texts, so that
// people and tools that know `istioctl analyze` read them the same way.
import type { ConfigInputs } from '../model/inputs.js';
import { PushContext } from '../model/push-context.js';
import { gatewayServerProblems } from '../model/gateway-tls.js';

export type AnalysisLevel = 'Error' | 'Warning' | 'Info';

export interface AnalysisMessage {
  code: string;
  name: string;
  level: AnalysisLevel;
  resource: { kind: string; namespace: string; name: string };
  /** The field of the resource the message is about. */
  field: string;
  message: string;
}

interface RawDestination { host?: string; subset?: string; port?: { number?: number } }
interface RawRoute { route?: { destination?: RawDestination; weight?: number }[] }
interface RawVirtualService { metadata: { name?: string; namespace?: string }; spec?: { http?: RawRoute[]; tcp?: RawRoute[]; tls?: RawRoute[] } }

/** Hosts declared by ServiceEntries (when the inputs carry them), as written. */
function serviceEntryHosts(inputs: ConfigInputs): Set<string> {
  const entries = (inputs as unknown as { serviceEntries?: { spec?: { hosts?: string[] } }[] }).serviceEntries ?? [];
  return new Set(entries.flatMap((se) => se.spec?.hosts ?? []));
}

export function analyze(inputs: ConfigInputs, domain?: string): AnalysisMessage[] {
  const push = PushContext.build(inputs, { version: 'analyze', domain });
  const external = serviceEntryHosts(inputs);
  const out: AnalysisMessage[] = [];
  for (const vs of inputs.virtualServices as unknown as RawVirtualService[]) {
    const namespace = vs.metadata.namespace ?? 'default';
    const resource = { kind: 'VirtualService', namespace, name: vs.metadata.name ?? '' };
    for (const section of ['http', 'tcp', 'tls'] as const) {
      (vs.spec?.[section] ?? []).forEach((rule, i) => {
        const routes = rule.route ?? [];
        routes.forEach((d, j) => {
          const field = `spec.${section}[${i}].route[${j}].destination`;
          const host = d.destination?.host;
          if (!host) return; // rejected at apply time
          const fqdn = push.resolve(host, namespace);
          const svc = push.service(fqdn);
          if (!svc) {
            if (external.has(host) || external.has(fqdn)) return;
            out.push({ code: 'IST0101', name: 'ReferencedResourceNotFound', level: 'Error', resource, field, message: `Referenced host not found: "${host}"` });
            return;
          }
          const subset = d.destination?.subset;
          if (!subset) return;
          if (!push.subset(fqdn, subset, namespace)) {
            out.push({ code: 'IST0101', name: 'ReferencedResourceNotFound', level: 'Error', resource, field, message: `Referenced host+subset in destinationrule not found: "${host}+${subset}"` });
            return;
          }
          // A single destination carries all traffic; otherwise only a positive weight does.
          const weight = routes.length === 1 ? (d.weight ?? 100) : (d.weight ?? 0);
          if (weight <= 0) return;
          const port = d.destination?.port?.number;
          const ports = port !== undefined ? [port] : svc.ports.map((p) => p.port);
          if (ports.every((p) => push.endpoints(fqdn, p, subset, namespace).length === 0)) {
            out.push({
              code: 'IST0173', name: 'DestinationRuleSubsetNotSelectPods', level: 'Warning', resource, field: `spec.${section}[${i}].route[${j}]`,
              message: `Weight ${weight} goes to subset ${subset} of "${host}", which has no ready endpoints. Until it has some, its share goes to the other destinations of the rule (503 UH if none has endpoints).`,
            });
          }
        });
      });
    }
  }
  // Gateway servers that are not served: Istio reports a missing credential as IST0101.
  for (const p of gatewayServerProblems(push)) {
    const missing = /^Secret "([^"]+)" not found/.exec(p.message);
    out.push({
      code: missing ? 'IST0101' : 'IST0106', name: missing ? 'ReferencedResourceNotFound' : 'SchemaValidationError', level: 'Error',
      resource: { kind: 'Gateway', namespace: p.gateway.namespace, name: p.gateway.name }, field: p.field,
      message: missing ? `Referenced credentialName not found: "${missing[1]}" (in namespace ${p.workloadNamespace}, where the gateway workload runs)` : p.message,
    });
  }
  return out;
}

/** Istio's line format: `<level> [<code>] (<kind> <name>.<namespace>) <message>`. */
export function formatMessage(m: AnalysisMessage): string {
  return `${m.level} [${m.code}] (${m.resource.kind} ${m.resource.name}.${m.resource.namespace}) ${m.message} (${m.field})`;
}

/** The IstioStatus validationMessages entry for a message. */
export function validationMessage(m: AnalysisMessage): { type: { code: string; name: string }; level: string; documentationUrl: string; description: string } {
  return {
    type: { code: m.code, name: m.name },
    level: m.level.toUpperCase(),
    documentationUrl: `https://istio.io/latest/docs/reference/config/analysis/${m.code.toLowerCase()}/`,
    description: `${m.message} (${m.field})`,
  };
}
