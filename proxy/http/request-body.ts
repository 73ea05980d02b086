// The downstream request body as Envoy's router handles it: it streams to the upstream as it
// arrives, and a copy is kept only up to a buffer limit (per_request_buffer_limit_bytes, else
// the listener's per_connection_buffer_limit_bytes, 1 MiB) so that a retry or a mirror can
// replay it. Past the limit the copy is dropped: no further retry, mirrors are cancelled,
// the one attempt in flight keeps streaming with the client's own back-pressure.
import { Readable } from 'node:stream';

/** One consumer of the body: an attempt (back-pressures the client) or a mirror (does not). */
class BodyReader extends Readable {
  constructor(private readonly tee: RequestBodyTee, readonly mirror: boolean) {
    super();
  }

  override _read(): void {
    this.tee.wanted(this);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.tee.detach(this);
    cb(err);
  }
}

export class RequestBodyTee {
  private retained: Buffer[] = [];
  private retainedBytes = 0;
  /** The copy is still complete, so a new reader can replay the body from its first byte. */
  private retaining = true;
  private attemptReaders = 0;
  private main: BodyReader | undefined;
  private readonly mirrors = new Set<BodyReader>();
  private paused = false;
  private ended = false;
  private failed: Error | undefined;
  private readonly completeWaiters: Array<() => void> = [];
  private destroyed = false;

  /** Called once when the body outgrows the limit (Envoy's retry_or_shadow_abandoned). */
  onOverflow: (() => void) | undefined;

  constructor(private readonly src: Readable, readonly limit: number, private readonly onBytes: (n: number) => void) {
    src.on('data', this.onData);
    src.once('end', this.onEnd);
    src.once('error', this.onError);
    // An HTTP/1.1 client that goes away mid-upload closes the request without 'error'.
    src.once('close', this.onClose);
  }

  /** True once the body can no longer be replayed from the start (a retry is impossible). */
  get overflowed(): boolean {
    return !this.retaining;
  }

  get complete(): boolean {
    return this.ended;
  }

  /** Resolves when the downstream body has fully arrived (or failed). */
  whenComplete(cb: () => void): void {
    if (this.ended || this.failed) cb();
    else this.completeWaiters.push(cb);
  }

  /**
   * A stream of the whole body for one attempt, replaying what arrived so far; undefined if
   * an earlier attempt already consumed bytes that are no longer kept.
   */
  attemptBody(): Readable | undefined {
    if (!this.retaining && this.attemptReaders > 0) return undefined;
    this.attemptReaders++;
    if (this.main) this.main.destroy();
    const r = new BodyReader(this, false);
    this.replayInto(r);
    if (!this.retaining) this.release();
    this.main = r;
    this.resume();
    return r;
  }

  /** A stream for a mirror: fed without back-pressure, cancelled if the body outgrows the limit. */
  mirrorBody(): Readable | undefined {
    if (!this.retaining) return undefined;
    const r = new BodyReader(this, true);
    this.replayInto(r);
    this.mirrors.add(r);
    return r;
  }

  /** No more retries will be made (a response is being relayed): the copy is not needed. */
  stopRetaining(): void {
    if (!this.retaining) return;
    this.retaining = false;
    if (this.attemptReaders > 0) this.release();
  }

  destroy(): void {
    this.src.off('data', this.onData);
    this.src.off('end', this.onEnd);
    // The 'error' listener stays: a client resetting later must not crash the process.
    this.src.off('close', this.onClose);
    this.destroyed = true;
    this.completeWaiters.length = 0;
    this.main?.destroy();
    for (const m of this.mirrors) m.destroy();
    this.release();
    // The rest of an unread body is drained by the HTTP server once the response is done.
    if (this.paused) this.src.resume();
  }

  /** @internal the reader's buffer has room again. */
  wanted(r: BodyReader): void {
    if (r === this.main) this.resume();
  }

  /** @internal the reader was destroyed (its attempt ended or failed). */
  detach(r: BodyReader): void {
    if (r.mirror) this.mirrors.delete(r);
    else if (r === this.main) this.main = undefined;
  }

  private replayInto(r: BodyReader): void {
    for (const c of this.retained) r.push(c);
    if (this.failed) r.destroy(this.failed);
    else if (this.ended) r.push(null);
  }

  private release(): void {
    this.retained = [];
    this.retainedBytes = 0;
  }

  private resume(): void {
    if (!this.paused || this.ended) return;
    this.paused = false;
    this.src.resume();
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.src.pause();
  }

  private readonly onData = (c: Buffer): void => {
    this.onBytes(c.length);
    // Kept while a replay may still need it: for retries, or until the first attempt starts.
    if (this.retaining || this.attemptReaders === 0) {
      this.retained.push(c);
      this.retainedBytes += c.length;
    }
    for (const m of this.mirrors) m.push(c);
    if (this.retaining && this.retainedBytes > this.limit) this.overflow();
    if (this.main) {
      if (!this.main.push(c)) this.pause();
    } else if (!this.retaining) {
      // Nobody to hand the bytes to and no room to keep them: the client waits.
      this.pause();
    }
  };

  private overflow(): void {
    this.retaining = false;
    for (const m of this.mirrors) m.destroy(new Error(`request body exceeds the buffer limit of ${this.limit} bytes`));
    this.mirrors.clear();
    // An attempt is streaming (it already holds every byte): the copy goes. Before the first
    // attempt the copy is all there is, so it stays until that attempt takes it.
    if (this.attemptReaders > 0) this.release();
    this.onOverflow?.();
  }

  private readonly onEnd = (): void => {
    this.ended = true;
    this.main?.push(null);
    for (const m of this.mirrors) m.push(null);
    this.settle();
  };

  private readonly onError = (err: Error): void => {
    this.fail(err);
  };

  private readonly onClose = (): void => {
    if (!this.ended) this.fail(new Error('downstream closed before the request body ended'));
  };

  private fail(err: Error): void {
    if (this.ended || this.failed || this.destroyed) return;
    this.failed = err;
    this.main?.destroy(err);
    for (const m of this.mirrors) m.destroy(err);
    this.settle();
  }

  private settle(): void {
    for (const cb of this.completeWaiters.splice(0)) cb();
  }
}
