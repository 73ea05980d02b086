// Label and field selectors in their URL string form (?labelSelector=, ?fieldSelector=).
import { badRequest } from './errors.js';

type LabelOp = 'eq' | 'neq' | 'in' | 'notin' | 'exists' | 'notexists';
interface LabelRequirement { key: string; op: LabelOp; values: string[] }

export type Matcher = (values: Record<string, string | undefined>) => boolean;

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { out.push(cur); cur = ''; continue; }
    cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== '');
}

function parseLabelRequirement(term: string): LabelRequirement {
  let m = /^([^\s=!(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
  if (m) return { key: m[1], op: m[2] as LabelOp, values: m[3].split(',').map((v) => v.trim()).filter((v) => v !== '') };
  m = /^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/.exec(term);
  if (m) return { key: m[1], op: m[2] === '!=' ? 'neq' : 'eq', values: [m[3]] };
  m = /^!\s*([^\s=!(),]+)$/.exec(term);
  if (m) return { key: m[1], op: 'notexists', values: [] };
  m = /^([^\s=!(),]+)$/.exec(term);
  if (m) return { key: m[1], op: 'exists', values: [] };
  throw badRequest(`unable to parse requirement: "${term}"`);
}

function matchRequirement(r: LabelRequirement, values: Record<string, string | undefined>): boolean {
  const v = values[r.key];
  switch (r.op) {
    case 'eq': return v !== undefined && v === r.values[0];
    case 'neq': return v === undefined || v !== r.values[0];
    case 'in': return v !== undefined && r.values.includes(v);
    case 'notin': return v === undefined || !r.values.includes(v);
    case 'exists': return v !== undefined;
    case 'notexists': return v === undefined;
  }
}

export function parseLabelSelector(s: string | null | undefined): Matcher {
  if (!s || s.trim() === '') return () => true;
  const reqs = splitTop(s).map(parseLabelRequirement);
  return (labels) => reqs.every((r) => matchRequirement(r, labels));
}

/** Field selectors support =, == and != only (as in Kubernetes). */
export function parseFieldSelector(s: string | null | undefined): { matcher: Matcher; fields: string[] } {
  if (!s || s.trim() === '') return { matcher: () => true, fields: [] };
  const reqs = splitTop(s).map((term): LabelRequirement => {
    const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw badRequest(`invalid selector: '${s}'; can't understand '${term}'`);
    return { key: m[1].trim(), op: m[2] === '!=' ? 'neq' : 'eq', values: [m[3].trim()] };
  });
  return {
    matcher: (fields) => reqs.every((r) => {
      const v = fields[r.key] ?? '';
      return r.op === 'eq' ? v === r.values[0] : v !== r.values[0];
    }),
    fields: reqs.map((r) => r.key),
  };
}
