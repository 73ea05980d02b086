// Envoy's CorsPolicy (envoy.extensions.filters.http.cors.v3), given per virtual host or per
// route in typed_per_filter_config["envoy.filters.http.cors"]; the route's wins.
import { arr, FieldErrors, obj, str, wrapped, type Obj } from './fields.js';
import { stringMatcher, type StringTest } from './route.js';

export const CORS_FILTER = 'envoy.filters.http.cors';

export interface CorsPolicy {
  allowOrigin: StringTest[];
  allowMethods?: string;
  allowHeaders?: string;
  exposeHeaders?: string;
  maxAge?: string;
  allowCredentials: boolean;
  /** Preflights from origins that do not match go on to the upstream (Envoy's default). */
  forwardNotMatchingPreflights: boolean;
  /** filter_enabled at 0%: the policy does nothing. */
  enabled: boolean;
}

export function decodeCorsPolicy(c: Obj, field: string, errors: FieldErrors): CorsPolicy | undefined {
  const before = errors.list.length;
  const allowOrigin: StringTest[] = [];
  arr(c.allowOriginStringMatch).forEach((m, i) => {
    const t = stringMatcher(obj(m) ?? {}, `${field}.allowOriginStringMatch[${i}]`, errors);
    if (t) allowOrigin.push(t);
  });
  const maxAge = str(c.maxAge);
  if (maxAge !== undefined && maxAge !== '' && !/^\d+$/.test(maxAge)) errors.add(`${field}.maxAge`, `"${maxAge}" is not a number of seconds`);
  const enabledPct = obj(obj(c.filterEnabled)?.defaultValue);
  const enabled = enabledPct === undefined || Number(enabledPct.numerator ?? 0) > 0;
  if (errors.list.length !== before) return undefined;
  const nonEmpty = (v: unknown): string | undefined => { const s = str(v); return s ? s : undefined; };
  return {
    allowOrigin,
    allowMethods: nonEmpty(c.allowMethods),
    allowHeaders: nonEmpty(c.allowHeaders),
    exposeHeaders: nonEmpty(c.exposeHeaders),
    maxAge: nonEmpty(maxAge),
    allowCredentials: wrapped(c.allowCredentials) === true,
    forwardNotMatchingPreflights: wrapped(c.forwardNotMatchingPreflights) !== false,
    enabled,
  };
}

/** The CORS policy of one level (route or virtual host), if it has one. */
export function perFilterCors(level: Obj, field: string, errors: FieldErrors): CorsPolicy | undefined {
  const cfg = obj(obj(level.typedPerFilterConfig)?.[CORS_FILTER]);
  return cfg ? decodeCorsPolicy(cfg, `${field}typedPerFilterConfig["${CORS_FILTER}"]`, errors) : undefined;
}
