// A 409 Conflict means our cache was behind the server: a newer version exists and its
// watch event is on the way. That is routine for a cache-driven controller, so the key is
// retried shortly without counting as a failure or being logged.
import { isConflict } from '../../api/kube/index.js';

export function quietConflicts(sync: (key: string) => Promise<void>, requeue: (key: string, ms: number) => void): (key: string) => Promise<void> {
  return async (key) => {
    try { await sync(key); } catch (e) {
      if (!isConflict(e) || (e as { reason?: string }).reason === 'AlreadyExists') throw e;
      requeue(key, 50);
    }
  };
}
