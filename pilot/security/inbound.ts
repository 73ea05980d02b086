// The inbound side of the contract: virtualInbound's filter chains split by the effective
// PeerAuthentication mode of each port (PERMISSIVE: a TLS chain and a plaintext chain;
// STRICT: the TLS chain only, so plaintext to that port matches nothing and is closed;
// DISABLE: plaintext only), X-Forwarded-Client-Cert handling on the HTTP connection
// managers, and the workload's RBAC filters in front of the router or TCP proxy.
import type { PushContext } from '../model/push-context.js';
import type { Proxy } from '../model/proxy.js';
import { HCM_FILTER, TCP_PROXY_FILTER, type FilterChain, type Json, type Listener } from '../xds/generators/envoy.js';
import { portMode, workloadMtls, type EffectiveMode } from './peer-authentication.js';
import { httpRbacFilter, networkRbacFilter, rbacRules, selectedPolicyKeys } from './authorization.js';
import { TLS_INSPECTOR, downstreamMtls } from './tls-context.js';

type Filter = { name: string; typedConfig: Json };
type InboundProxy = Pick<Proxy, 'workload'>;

function withHcm(filters: Filter[], f: (tc: Json) => Json): Filter[] {
  return filters.map((x) => (x.name === HCM_FILTER ? { ...x, typedConfig: f(x.typedConfig) } : x));
}

// Over TLS the proxy appends the verified peer's details; over plaintext a client-sent
// header is removed, so nobody can claim an identity without a certificate.
function xfcc(filters: Filter[], tls: boolean): Filter[] {
  return withHcm(filters, (tc) => (tls
    ? { ...tc, forwardClientCertDetails: 'APPEND_FORWARD', setCurrentClientCertDetails: { subject: { value: true }, dns: true, uri: true } }
    : { ...tc, forwardClientCertDetails: 'SANITIZE' }));
}

function withAuthorization(filters: Filter[], http: Filter[], network: Filter[]): Filter[] {
  const out: Filter[] = [];
  for (const f of filters) {
    if (f.name === TCP_PROXY_FILTER) out.push(...network);
    if (f.name === HCM_FILTER && http.length) {
      const hf = (f.typedConfig.httpFilters as Filter[] | undefined) ?? [];
      const router = hf.findIndex((x) => x.name === 'envoy.filters.http.router');
      const at = router < 0 ? hf.length : router;
      out.push({ ...f, typedConfig: { ...f.typedConfig, httpFilters: [...hf.slice(0, at), ...http, ...hf.slice(at)] } });
      continue;
    }
    out.push(f);
  }
  return out;
}

function byMode(chain: FilterChain, mode: EffectiveMode, trustDomain: string): FilterChain[] {
  const match = chain.filterChainMatch ?? {};
  const tls: FilterChain = { ...chain, filterChainMatch: { ...match, transportProtocol: 'tls' }, transportSocket: downstreamMtls(trustDomain), filters: xfcc(chain.filters, true) };
  const raw: FilterChain = { ...chain, filterChainMatch: { ...match, transportProtocol: 'raw_buffer' }, filters: xfcc(chain.filters, false) };
  if (mode === 'STRICT') return [tls];
  if (mode === 'DISABLE') return [{ ...chain, filters: xfcc(chain.filters, false) }];
  return [tls, raw];
}

/** Applies the workload's PeerAuthentication and AuthorizationPolicies to virtualInbound. */
export function secureInboundListener(push: PushContext, proxy: InboundProxy, listener: Listener): Listener {
  if (!push.security.enabled) return listener;
  const mtls = workloadMtls(push, proxy.workload);
  const http = rbacRules(push, proxy.workload, false).map(httpRbacFilter);
  const network = rbacRules(push, proxy.workload, true).map(networkRbacFilter);
  const filterChains = listener.filterChains.flatMap((chain) => {
    const port = chain.filterChainMatch?.destinationPort?.value;
    const mode = port === undefined ? mtls.mode : portMode(mtls, port);
    return byMode({ ...chain, filters: withAuthorization(chain.filters, http, network) }, mode, push.security.trustDomain);
  });
  return { ...listener, listenerFilters: [...(listener.listenerFilters ?? []), TLS_INSPECTOR], filterChains };
}

/**
 * What of the workload the secured inbound listener depends on beyond its namespace and
 * ports: the workload-selector policies that select it (the namespace- and mesh-wide ones
 * are the same for every pod of a namespace).
 */
export function inboundSecurityClass(push: PushContext, proxy: InboundProxy): string {
  if (!push.security.enabled) return '';
  const mtls = workloadMtls(push, proxy.workload);
  return [mtls.workloadPolicy ?? '', ...selectedPolicyKeys(push, proxy.workload)].join(',');
}
