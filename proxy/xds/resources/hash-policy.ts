// RouteAction.hash_policy: what a RING_HASH cluster hashes on. Policies are evaluated in
// order; a terminal policy that produced a hash stops the evaluation (Envoy semantics).
import { arr, FieldErrors, obj, str, type Obj } from './fields.js';

export type HashPolicy =
  | { kind: 'header'; name: string; terminal: boolean }
  | { kind: 'cookie'; name: string; terminal: boolean }
  | { kind: 'sourceIp'; terminal: boolean }
  | { kind: 'queryParameter'; name: string; terminal: boolean };

export function decodeHashPolicies(list: unknown, field: string, errors: FieldErrors): HashPolicy[] {
  const out: HashPolicy[] = [];
  arr(list).forEach((p, i) => {
    const hp: Obj = obj(p) ?? {};
    const f = `${field}[${i}]`;
    const terminal = hp.terminal === true;
    const header = obj(hp.header);
    const cookie = obj(hp.cookie);
    const conn = obj(hp.connectionProperties);
    const query = obj(hp.queryParameter);
    if (header) {
      const name = str(header.headerName)?.toLowerCase();
      if (!name) errors.add(`${f}.header.headerName`, 'required');
      else if (obj(header.regexRewrite)) errors.add(`${f}.header.regexRewrite`, 'not supported');
      else out.push({ kind: 'header', name, terminal });
    } else if (cookie) {
      const name = str(cookie.name);
      if (!name) errors.add(`${f}.cookie.name`, 'required');
      // With a ttl Envoy would generate the cookie; that needs response rewriting we do not do.
      else if (cookie.ttl !== undefined) errors.add(`${f}.cookie.ttl`, 'generated cookies are not supported');
      else out.push({ kind: 'cookie', name, terminal });
    } else if (conn) {
      if (conn.sourceIp !== true) errors.add(`${f}.connectionProperties.sourceIp`, 'must be true');
      else out.push({ kind: 'sourceIp', terminal });
    } else if (query) {
      const name = str(query.name);
      if (!name) errors.add(`${f}.queryParameter.name`, 'required');
      else out.push({ kind: 'queryParameter', name, terminal });
    } else {
      errors.add(f, 'one of header, cookie, connectionProperties, queryParameter is required');
    }
  });
  return out;
}
