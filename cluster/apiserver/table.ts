// meta.k8s.io/v1 Table responses (kubectl's human-readable output asks for them).
import type { KindInfo } from './registry/types.js';
import { defaultTable } from './strategies/common.js';
import type { Json } from './util.js';

export function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  // The first acceptable media type decides; kubectl lists Table first when it wants one.
  const first = accept.split(',')[0];
  return /as=Table/.test(first) && /g=meta\.k8s\.io/.test(first);
}

function rowObject(obj: Json, includeObject: string | null): unknown {
  if (includeObject === 'None') return undefined;
  if (includeObject === 'Object') return obj;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

export function toTable(k: KindInfo, objects: Json[], resourceVersion: string, includeObject: string | null, withColumns = true): Json {
  const t = k.table ?? defaultTable;
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: withColumns ? t.columns.map((c) => ({ name: c.name, type: c.type, format: c.format ?? '', description: c.description ?? '', priority: c.priority ?? 0 })) : [],
    rows: objects.map((o) => ({ cells: t.cells(o).map((c) => (c === undefined || c === null ? '' : c)), object: rowObject(o, includeObject) })),
  };
}
