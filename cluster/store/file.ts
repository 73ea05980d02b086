// Durable store: a write-ahead log of JSON lines (fsync'd before a write is acknowledged),
// replayed on open and periodically folded into a snapshot written atomically
// (tmp + fsync + rename). A torn last log line (crash mid-append) is ignored and cut off.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MemoryStore, type HistoryEvent, type MemoryStoreOptions, type MutationRecord } from './memory.js';
import type { JsonObject } from './types.js';

export interface FileStoreOptions extends MemoryStoreOptions {
  /** Fold the log into a snapshot after this many records (default 2000). */
  compactEvery?: number;
}

interface SnapshotItem { key: string; value: JsonObject; createRevision: number; modRevision: number; version: number }
interface Snapshot { revision: number; items: SnapshotItem[] }

const WAL = 'wal.jsonl';
const SNAPSHOT = 'snapshot.json';

export class FileStore extends MemoryStore {
  private walFd: number;
  private walRecords = 0;
  private readonly compactEvery: number;
  private ready = false;

  constructor(readonly dir: string, opts: FileStoreOptions = {}) {
    super(opts);
    this.compactEvery = opts.compactEvery ?? 2000;
    fs.mkdirSync(dir, { recursive: true });
    this.loadSnapshot();
    this.walFd = this.replayWal();
    // History before this point is gone: watches from older revisions must relist (410).
    this.historyStart = this.rev;
    this.ready = true;
  }

  // Group commit: records are appended at once (in revision order) and made durable by one
  // fdatasync per batch, run off the event loop. Writers are acknowledged, and watchers told,
  // only after the sync that covers their record: the store never acknowledges or shows a
  // change that a crash could still lose.
  private unsynced: HistoryEvent[] = [];
  /** The batch whose sync is running: applied in memory, not yet in history. */
  private syncingEvents: HistoryEvent[] = [];
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private syncing?: Promise<void>;

  protected override persist(record: MutationRecord): void {
    if (!this.ready) return;
    fs.writeSync(this.walFd, JSON.stringify(record) + '\n');
    this.walRecords++;
  }

  protected override publish(h: HistoryEvent): void {
    if (!this.ready) { this.record(h); return; }
    this.unsynced.push(h);
  }

  protected override durable(): Promise<void> {
    if (!this.ready) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.syncing ??= this.syncLoop();
    return p;
  }

  /** Syncs batches until nothing is waiting; each batch is what was written before its sync began. */
  private async syncLoop(): Promise<void> {
    while (this.waiters.length) {
      const waiters = this.waiters.splice(0);
      const events = this.unsynced.splice(0);
      this.syncingEvents = events;
      try {
        await new Promise<void>((resolve, reject) => fs.fdatasync(this.walFd, (e) => (e ? reject(e) : resolve())));
      } catch (e) {
        // The disk refused: what is in memory may not be on disk, so stop taking writes
        // rather than acknowledge anything more.
        const err = new Error(`store: write-ahead log sync failed, store closed: ${(e as Error).message}`);
        this.closed = true;
        [...waiters, ...this.waiters.splice(0)].forEach((w) => w.reject(err));
        break;
      }
      this.syncingEvents = [];
      for (const h of events) this.record(h);
      waiters.forEach((w) => w.resolve());
      if (this.walRecords >= this.compactEvery && !this.closed) this.compact();
    }
    this.syncing = undefined;
  }

  protected override pending(): HistoryEvent[] { return [...this.syncingEvents, ...this.unsynced]; }

  /** Writes a snapshot of the current state and empties the log. */
  compact(): void {
    const snap: Snapshot = { revision: this.rev, items: [] };
    for (const [key, e] of [...this.entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      snap.items.push({ key, value: JSON.parse(e.json) as JsonObject, createRevision: e.createRevision, modRevision: e.modRevision, version: e.version });
    }
    const file = path.join(this.dir, SNAPSHOT);
    const tmp = file + '.tmp';
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(snap));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    fsyncDir(this.dir);
    // A crash between the rename and this truncate is harmless: replay skips records
    // at or below the snapshot revision.
    fs.ftruncateSync(this.walFd, 0);
    fs.fsyncSync(this.walFd);
    this.walRecords = 0;
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    await this.syncing;
    await super.close();
    fs.closeSync(this.walFd);
  }

  private loadSnapshot(): void {
    const file = path.join(this.dir, SNAPSHOT);
    if (!fs.existsSync(file)) return;
    const snap = JSON.parse(fs.readFileSync(file, 'utf8')) as Snapshot;
    for (const it of snap.items) {
      this.replay({ rev: it.modRevision, op: 'put', key: it.key, value: it.value, create: it.createRevision, ver: it.version });
    }
    this.rev = snap.revision;
  }

  /** Replays the log and returns it opened for appending, cut after its last whole line. */
  private replayWal(): number {
    const file = path.join(this.dir, WAL);
    const data = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0);
    let offset = 0;
    let good = 0; // bytes up to the end of the last valid line
    while (offset < data.length) {
      const nl = data.indexOf(0x0a, offset);
      if (nl < 0) break; // torn tail: no newline written, so the write was never acknowledged
      const line = data.subarray(offset, nl).toString('utf8');
      offset = nl + 1;
      if (line.trim() !== '') {
        let rec: MutationRecord;
        try {
          rec = JSON.parse(line) as MutationRecord;
        } catch {
          if (offset >= data.length) break; // torn last line
          throw new Error(`store log ${file} is corrupt at byte ${good} (not its last line)`);
        }
        if (rec.rev > this.rev) this.replay(rec);
        this.walRecords++;
      }
      good = offset;
    }
    if (good < data.length) {
      // Cut the torn tail so the next append starts on a fresh line.
      fs.truncateSync(file, good);
    }
    const fd = fs.openSync(file, 'a', 0o600);
    fs.fsyncSync(fd);
    return fd;
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  }
}
