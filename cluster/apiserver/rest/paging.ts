// Chunked lists (?limit=&continue=), as in Kubernetes' etcd3 store: the continue token
// carries the last key returned and the revision of the first page. A later page reads
// keys after that key; when the store no longer keeps history back to the token's
// revision the token has expired (410 Expired), as with an etcd compaction.
import type { Store } from '../../store/types.js';
import { isStoreError } from '../../store/types.js';
import { ApiError, badRequest } from '../errors.js';

interface ContinueToken { v: string; rv: number; start: string }

const TOKEN_VERSION = 'meta.k8s.io/v1';

export function encodeContinue(lastKey: string, revision: number): string {
  return Buffer.from(JSON.stringify({ v: TOKEN_VERSION, rv: revision, start: `${lastKey}\u0000` })).toString('base64url');
}

export function decodeContinue(token: string, prefix: string): ContinueToken {
  let t: Partial<ContinueToken>;
  try {
    t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<ContinueToken>;
  } catch {
    throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
  }
  if (t.v !== TOKEN_VERSION || typeof t.rv !== 'number' || typeof t.start !== 'string') {
    throw badRequest(`continue key is not valid: server does not recognize this encoding`);
  }
  if (!t.start.startsWith(prefix)) throw badRequest('continue key is not valid: the key does not belong to this list');
  return { v: t.v, rv: t.rv, start: t.start };
}

/** Throws 410 Expired when the store has compacted away the token's revision. */
export async function checkNotExpired(store: Store, prefix: string, revision: number): Promise<void> {
  try {
    const cancel = await store.watch(prefix, revision, () => {});
    cancel();
  } catch (e) {
    if (isStoreError(e, 'Compacted')) {
      throw new ApiError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
    }
    throw e;
  }
}

export function parseLimit(q: URLSearchParams): number {
  const raw = q.get('limit');
  if (raw === null || raw === '') return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw badRequest(`invalid limit: ${raw}`);
  return n;
}
