// Applies route, virtual host and route configuration header mutations, in Envoy's order:
// the most specific level first, so the route configuration's OVERWRITE wins by default.
import type { HeaderMutation, HeaderMutations } from '../xds/resources/header-mutation.js';

export function mutationsFor(levels: ReadonlyArray<HeaderMutations | undefined>): HeaderMutations[] {
  return levels.filter((l): l is HeaderMutations => l !== undefined);
}

/** Mutates a flat [name, value, ...] request header list. */
export function applyToRequest(headers: string[], levels: HeaderMutations[]): string[] {
  let out = headers;
  for (const level of levels) out = applyFlat(out, level.request);
  return out;
}

function applyFlat(headers: string[], m: HeaderMutation): string[] {
  let out = headers;
  if (m.remove.length > 0) {
    const drop = new Set(m.remove);
    const kept: string[] = [];
    for (let i = 0; i < out.length; i += 2) if (!drop.has(out[i].toLowerCase())) kept.push(out[i], out[i + 1]);
    out = kept;
  }
  for (const h of m.add) {
    const present = (): boolean => { for (let i = 0; i < out.length; i += 2) if (out[i].toLowerCase() === h.name) return true; return false; };
    const without = (): string[] => { const k: string[] = []; for (let i = 0; i < out.length; i += 2) if (out[i].toLowerCase() !== h.name) k.push(out[i], out[i + 1]); return k; };
    switch (h.action) {
      case 'APPEND_IF_EXISTS_OR_ADD': out = [...out, h.name, h.value]; break;
      case 'ADD_IF_ABSENT': if (!present()) out = [...out, h.name, h.value]; break;
      case 'OVERWRITE_IF_EXISTS_OR_ADD': out = [...without(), h.name, h.value]; break;
      case 'OVERWRITE_IF_EXISTS': if (present()) out = [...without(), h.name, h.value]; break;
    }
  }
  return out;
}

/** Mutates a response header record in place and returns it. */
export function applyToResponse(headers: Record<string, string | string[]>, levels: HeaderMutations[]): Record<string, string | string[]> {
  for (const level of levels) {
    for (const name of level.response.remove) delete headers[name];
    for (const h of level.response.add) {
      const cur = headers[h.name];
      switch (h.action) {
        case 'APPEND_IF_EXISTS_OR_ADD':
          headers[h.name] = cur === undefined ? h.value : [...(Array.isArray(cur) ? cur : [cur]), h.value];
          break;
        case 'ADD_IF_ABSENT': if (cur === undefined) headers[h.name] = h.value; break;
        case 'OVERWRITE_IF_EXISTS_OR_ADD': headers[h.name] = h.value; break;
        case 'OVERWRITE_IF_EXISTS': if (cur !== undefined) headers[h.name] = h.value; break;
      }
    }
  }
  return headers;
}
