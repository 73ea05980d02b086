// A de-duplicating work queue of object keys with per-key exponential back-off, the
// shape of client-go's rate-limited queue: handlers enqueue, one worker syncs a key at a
// time, a key that is being synced and is enqueued again is synced once more afterwards.

export type SyncFn = (key: string) => Promise<void>;

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirtyWhileProcessing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private running = 0;
  private stopped = false;

  constructor(private readonly name: string, private readonly sync: SyncFn, private readonly workers = 1) {}

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) { this.dirtyWhileProcessing.add(key); return; }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  addAfter(key: string, ms: number): void {
    const t = setTimeout(() => { this.timers.delete(t); this.add(key); }, ms);
    t.unref?.();
    this.timers.add(t);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  get length(): number { return this.queue.length; }

  private pump(): void {
    while (this.running < this.workers && this.queue.length && !this.stopped) {
      const key = this.queue.shift() as string;
      this.queued.delete(key);
      this.processing.add(key);
      this.running++;
      void this.sync(key).then(
        () => { this.failures.delete(key); },
        (e: unknown) => {
          const n = (this.failures.get(key) ?? 0) + 1;
          this.failures.set(key, n);
          const delay = Math.min(5 * 2 ** n, 30_000);
          if (n <= 3 || n % 10 === 0) console.error(`${this.name}: sync ${key} failed (attempt ${n}, retry in ${delay} ms): ${(e as Error).message ?? e}`);
          this.addAfter(key, delay);
        },
      ).finally(() => {
        this.running--;
        this.processing.delete(key);
        if (this.dirtyWhileProcessing.delete(key)) this.add(key);
        this.pump();
      });
    }
  }
}
