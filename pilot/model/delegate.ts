// VirtualService delegation (Istio's `http[].delegate`): a root VirtualService hands the
// requests one of its rules matches to a delegate VirtualService (one without hosts). The
// delegate's rules are inlined in place, each delegate match block merged with the root
// block (the delegate's uri/method/authority/scheme win, headers and query parameters are
// combined, port/source/gateway selectors come from the root). Destination hosts are
// resolved in the delegate's namespace before inlining. Delegates do not chain further.
import type { HTTPMatchRequest, HTTPRoute, VirtualService } from '../../api/istio/index.js';
import { resolveHost } from './hosts.js';

function mergeMatch(root: HTTPMatchRequest | undefined, child: HTTPMatchRequest | undefined): HTTPMatchRequest | undefined {
  if (!root) return child;
  if (!child) return root;
  const out: HTTPMatchRequest = { ...root };
  for (const k of ['uri', 'method', 'authority', 'scheme', 'ignoreUriCase', 'name'] as const) if (child[k] !== undefined) (out as Record<string, unknown>)[k] = child[k];
  if (child.headers) out.headers = { ...root.headers, ...child.headers };
  if (child.withoutHeaders) out.withoutHeaders = { ...root.withoutHeaders, ...child.withoutHeaders };
  if (child.queryParams) out.queryParams = { ...root.queryParams, ...child.queryParams };
  return out;
}

function resolveRouteHosts(rule: HTTPRoute, namespace: string, domain: string): HTTPRoute {
  const fix = <T extends { host: string } | undefined>(d: T): T => (d ? { ...d, host: resolveHost(d.host, namespace, domain) } : d);
  return {
    ...rule,
    route: rule.route?.map((r) => ({ ...r, destination: fix(r.destination) })),
    mirror: fix(rule.mirror),
    mirrors: rule.mirrors?.map((m) => ({ ...m, destination: fix(m.destination) })),
  };
}

/** The root VirtualService with every delegate rule inlined; unknown delegates are warned about and dropped. */
export function expandDelegates(vs: VirtualService, all: ReadonlyMap<string, VirtualService>, domain: string, warn: (m: string) => void): VirtualService {
  const http = vs.spec.http ?? [];
  if (!http.some((r) => r.delegate)) return vs;
  const ns = vs.metadata.namespace ?? 'default';
  const id = `VirtualService ${ns}/${vs.metadata.name}`;
  const out: HTTPRoute[] = [];
  http.forEach((rule, i) => {
    if (!rule.delegate) { out.push(rule); return; }
    const dns = rule.delegate.namespace || ns;
    const target = all.get(`${dns}/${rule.delegate.name}`);
    if (!target) { warn(`${id}: spec.http[${i}].delegate ${dns}/${rule.delegate.name} does not exist; rule skipped`); return; }
    if (target.spec.hosts?.length) { warn(`${id}: spec.http[${i}].delegate ${dns}/${rule.delegate.name} has hosts, so it cannot be a delegate; rule skipped`); return; }
    for (const child of target.spec.http ?? []) {
      if (child.delegate) { warn(`VirtualService ${dns}/${target.metadata.name}: a delegate cannot delegate further; rule skipped`); continue; }
      const rootBlocks = rule.match?.length ? rule.match : [undefined];
      const childBlocks = child.match?.length ? child.match : [undefined];
      const match = rootBlocks.flatMap((r) => childBlocks.map((c) => mergeMatch(r, c))).filter((m): m is HTTPMatchRequest => m !== undefined);
      const inlined = resolveRouteHosts({ ...child, match: match.length ? match : undefined }, dns, domain);
      // Root-level policies apply when the delegate does not set its own (Istio's merge).
      out.push({ ...inlined, headers: inlined.headers ?? rule.headers, timeout: inlined.timeout ?? rule.timeout, retries: inlined.retries ?? rule.retries });
    }
  });
  return { ...vs, spec: { ...vs.spec, http: out } };
}
