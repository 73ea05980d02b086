// Istio host-name resolution: a short name in a VirtualService or DestinationRule is
// resolved in the rule's own namespace; names with a dot are taken as they are.

export const DEFAULT_DOMAIN = 'cluster.local';

export function serviceFqdn(name: string, namespace: string, domain = DEFAULT_DOMAIN): string {
  return `${name}.${namespace}.svc.${domain}`;
}

/**
 * `reviews` in namespace `default` -> `reviews.default.svc.cluster.local`. Names that
 * already contain a dot (`reviews.default`, an FQDN, `*.example.com`) are kept as they
 * are, as Istio does (it only expands single-label names).
 */
export function resolveHost(host: string, namespace: string, domain = DEFAULT_DOMAIN): string {
  if (host === '*' || host.includes('.')) return host;
  return serviceFqdn(host, namespace, domain);
}

/** Does a (possibly wildcard) rule host cover a concrete service FQDN? */
export function hostMatches(ruleHost: string, fqdn: string): boolean {
  if (ruleHost === fqdn || ruleHost === '*') return true;
  if (ruleHost.startsWith('*.')) return fqdn.endsWith(ruleHost.slice(1));
  return false;
}
