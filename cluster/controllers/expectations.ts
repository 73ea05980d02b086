// Controller expectations (client-go's UIDTrackingControllerExpectations): how many pods a
// controller has asked to create, and which it has asked to delete, that its informer has
// not reported yet. While they are outstanding the controller must not act on the cache,
// or a burst of events would make it create or delete the same pods twice.

const TTL_MS = 5 * 60_000; // Stale expectations (a lost watch event) expire, as in Kubernetes.

interface Expectation { adds: number; deletes: Set<string>; since: number }

export class Expectations {
  private readonly byKey = new Map<string, Expectation>();

  satisfied(key: string): boolean {
    const e = this.byKey.get(key);
    if (!e) return true;
    if (e.adds <= 0 && e.deletes.size === 0) return true;
    return Date.now() - e.since > TTL_MS;
  }

  expectCreations(key: string, n: number): void {
    this.byKey.set(key, { adds: n, deletes: new Set(), since: Date.now() });
  }

  expectDeletions(key: string, uids: string[]): void {
    this.byKey.set(key, { adds: 0, deletes: new Set(uids), since: Date.now() });
  }

  creationObserved(key: string): void {
    const e = this.byKey.get(key);
    if (e && e.adds > 0) e.adds--;
  }

  deletionObserved(key: string, uid: string | undefined): void {
    if (uid) this.byKey.get(key)?.deletes.delete(uid);
  }

  forget(key: string): void { this.byKey.delete(key); }
}
