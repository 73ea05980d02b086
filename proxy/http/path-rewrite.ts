// Path rewriting shared by route actions and redirects: prefix_rewrite replaces the matched
// prefix; regex_rewrite substitutes over the path without its query string.
import type { RegexRewrite } from '../xds/resources/route.js';

export function rewritePath(url: string, matchedPrefix: string | undefined, prefixRewrite: string | undefined, regexRewrite: RegexRewrite | undefined): string {
  if (prefixRewrite !== undefined && matchedPrefix !== undefined) return prefixRewrite + url.slice(matchedPrefix.length);
  if (regexRewrite) {
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q);
    regexRewrite.pattern.lastIndex = 0;
    return path.replace(regexRewrite.pattern, regexRewrite.substitution) + query;
  }
  return url;
}
