// request/response_headers_to_add and _to_remove, at route, virtual host and route
// configuration level (Envoy's HeaderValueOption with append_action or the older append).
import { arr, FieldErrors, obj, str, wrapped, type Obj } from './fields.js';

export type AppendAction = 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';
const ACTIONS: ReadonlySet<string> = new Set(['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS']);

export interface HeaderToAdd {
  name: string;
  value: string;
  action: AppendAction;
}

export interface HeaderMutation {
  add: HeaderToAdd[];
  remove: string[];
}

export interface HeaderMutations {
  request: HeaderMutation;
  response: HeaderMutation;
}

// Envoy refuses to let config touch these (pseudo-headers and Host).
const PROTECTED = /^(:|host$)/i;

function decodeAdds(list: unknown, field: string, errors: FieldErrors): HeaderToAdd[] {
  const out: HeaderToAdd[] = [];
  arr(list).forEach((o, i) => {
    const hvo = obj(o) ?? {};
    const f = `${field}[${i}]`;
    const h = obj(hvo.header);
    const name = str(h?.key)?.toLowerCase() ?? '';
    if (PROTECTED.test(name)) {
      errors.add(`${f}.header.key`, `"${name}" may not be modified`);
      return;
    }
    if (!name || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
      errors.add(`${f}.header.key`, `"${name}" is not a header name`);
      return;
    }
    const value = str(h?.value) ?? '';
    if (/[\r\n\0]/.test(value)) {
      errors.add(`${f}.header.value`, 'must not contain CR, LF or NUL');
      return;
    }
    let action: AppendAction = 'APPEND_IF_EXISTS_OR_ADD';
    const a = str(hvo.appendAction);
    const append = wrapped(hvo.append);
    if (a !== undefined && append !== undefined) errors.add(f, 'append and appendAction are mutually exclusive');
    if (a !== undefined) {
      if (ACTIONS.has(a)) action = a as AppendAction;
      else errors.add(`${f}.appendAction`, `"${a}" is not an append action`);
    } else if (append === false) action = 'OVERWRITE_IF_EXISTS_OR_ADD';
    out.push({ name, value, action });
  });
  return out;
}

function decodeRemoves(list: unknown, field: string, errors: FieldErrors): string[] {
  const out: string[] = [];
  arr(list).forEach((n, i) => {
    const name = (str(n) ?? '').toLowerCase();
    if (!name || PROTECTED.test(name)) errors.add(`${field}[${i}]`, `"${name}" may not be removed`);
    else out.push(name);
  });
  return out;
}

/** Reads the four fields from a Route, VirtualHost or RouteConfiguration. */
export function decodeHeaderMutations(level: Obj, field: string, errors: FieldErrors): HeaderMutations | undefined {
  const p = field ? `${field}.` : '';
  const m: HeaderMutations = {
    request: { add: decodeAdds(level.requestHeadersToAdd, `${p}requestHeadersToAdd`, errors), remove: decodeRemoves(level.requestHeadersToRemove, `${p}requestHeadersToRemove`, errors) },
    response: { add: decodeAdds(level.responseHeadersToAdd, `${p}responseHeadersToAdd`, errors), remove: decodeRemoves(level.responseHeadersToRemove, `${p}responseHeadersToRemove`, errors) },
  };
  const empty = m.request.add.length + m.request.remove.length + m.response.add.length + m.response.remove.length === 0;
  return empty ? undefined : m;
}
