// The push queue: which proxies still need the current snapshot, worked through with a
// bounded number of pushes in flight, yielding to the event loop between proxies (so
// gRPC keepalives, ACKs and new connections are served during a big push). A push is in
// flight until its writes are flushed to the proxy's stream (or a timeout passes), which
// bounds the response bytes pilot holds at once. A proxy queued twice is pushed once;
// one queued while its push is in flight is pushed again afterwards. First pushes of new
// connections take a token from a bucket, so a reconnect storm is spread out.
import { setImmediate as yieldLoop } from 'node:timers/promises';

export interface PushQueueOptions {
  /** Pushes in flight at once (Istio's PILOT_PUSH_THROTTLE is 100). */
  concurrency?: number;
  /** New connections' first pushes per second, and the burst allowed. */
  initialPerSecond?: number;
  initialBurst?: number;
  /** A push whose writes are not flushed by then frees its slot anyway. */
  flushTimeoutMs?: number;
}

export type PushJob<K> = (key: K) => Promise<void>;

export class TokenBucket {
  private tokens: number;
  private last = Date.now();
  constructor(private readonly perSecond: number, private readonly burst: number) { this.tokens = burst; }

  /** Milliseconds until a token is available (0: taken now). */
  take(): number {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens >= 1) { this.tokens -= 1; return 0; }
    return Math.ceil(((1 - this.tokens) / this.perSecond) * 1000);
  }
}

export class PushQueue<K> {
  private readonly order: K[] = [];
  private readonly queued = new Set<K>();
  private readonly inFlight = new Set<K>();
  private readonly again = new Set<K>();
  private readonly initial = new Set<K>();
  private readonly bucket: TokenBucket;
  private readonly concurrency: number;
  private running = false;
  private idleWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(private readonly job: PushJob<K>, opts: PushQueueOptions = {}) {
    this.concurrency = opts.concurrency ?? 100;
    this.bucket = new TokenBucket(opts.initialPerSecond ?? 250, opts.initialBurst ?? 250);
  }

  get length(): number { return this.queued.size; }
  get busy(): number { return this.inFlight.size; }

  /** Queue a push to `key`; `initial` marks a new connection's first push (rate-limited). */
  enqueue(key: K, initial = false): void {
    if (this.stopped) return;
    if (this.inFlight.has(key)) { this.again.add(key); return; }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    if (initial) this.initial.add(key);
    this.order.push(key);
    this.kick();
  }

  /** Forget a key (its connection closed). */
  remove(key: K): void {
    this.queued.delete(key);
    this.again.delete(key);
    this.initial.delete(key);
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (!this.queued.size && !this.inFlight.size) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    this.order.length = 0;
    this.queued.clear();
    this.again.clear();
    this.notifyIdle();
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    void this.drain().finally(() => { this.running = false; if (this.order.length && !this.stopped) this.kick(); });
  }

  private async drain(): Promise<void> {
    while (this.order.length && !this.stopped) {
      if (this.inFlight.size >= this.concurrency) { await this.slotFreed(); continue; }
      const key = this.order[0];
      if (!this.queued.has(key)) { this.order.shift(); continue; } // removed
      if (this.initial.has(key)) {
        const wait = this.bucket.take();
        if (wait > 0) { await new Promise((r) => setTimeout(r, wait)); continue; }
        this.initial.delete(key);
      }
      this.order.shift();
      this.queued.delete(key);
      this.inFlight.add(key);
      void this.run(key);
      await yieldLoop();
    }
  }

  private slotWaiters: (() => void)[] = [];
  private slotFreed(): Promise<void> { return new Promise((r) => this.slotWaiters.push(r)); }

  private async run(key: K): Promise<void> {
    try {
      await this.job(key);
    } catch (e) {
      console.error(`pilot: push: ${(e as Error).stack ?? e}`);
    } finally {
      this.inFlight.delete(key);
      const w = this.slotWaiters.shift();
      if (w) w();
      if (this.again.delete(key)) this.enqueue(key);
      this.notifyIdle();
    }
  }

  private notifyIdle(): void {
    if (this.queued.size || this.inFlight.size) return;
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }
}
