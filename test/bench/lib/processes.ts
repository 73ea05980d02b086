// Child processes of the benchmark (upstream, sidecars, nginx, haproxy): started, watched
// for early exit, and stopped by their own PID only.
import { fork, spawn, type ChildProcess } from 'node:child_process';

export interface ChildHandle {
  name: string;
  pid: number;
  stop(): Promise<void>;
}

const running = new Set<Child>();

/** Stops every child still running (for an interrupted bench). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map((c) => c.stop()));
}

class Child implements ChildHandle {
  private stderr = '';
  private exited = false;
  readonly exit: Promise<number | null>;

  constructor(readonly name: string, readonly proc: ChildProcess) {
    if (proc.pid === undefined) throw new Error(`${name}: failed to start`);
    proc.stderr?.on('data', (c: Buffer) => { this.stderr = (this.stderr + c.toString()).slice(-2000); });
    proc.stdout?.on('data', () => undefined); // drained, never blocks the child
    this.exit = new Promise((resolve) => proc.once('exit', (code) => { this.exited = true; running.delete(this); resolve(code); }));
    running.add(this);
  }

  get pid(): number {
    return this.proc.pid!;
  }

  tail(): string {
    return this.stderr.trim() ? `; stderr: ${this.stderr.trim()}` : '';
  }

  /** Rejects if the process exits before `ready` settles. */
  async until<T>(ready: Promise<T>, timeoutMs: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        ready,
        this.exit.then((code) => { throw new Error(`${this.name} exited early with code ${code}${this.tail()}`); }),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${this.name}: not ready after ${timeoutMs} ms${this.tail()}`)), timeoutMs); }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    this.signal('SIGTERM');
    const killed = await Promise.race([this.exit.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
    if (!killed) {
      this.signal('SIGKILL');
      await this.exit;
    }
  }

  private signal(sig: NodeJS.Signals): void {
    try {
      process.kill(this.pid, sig);
    } catch {
      // already gone
    }
  }
}

/** Forks a Node module of the bench and waits for its first IPC message (its ports). */
export async function forkNode<T>(name: string, file: string, args: string[] = [], timeoutMs = 10_000, execArgv: string[] = []): Promise<{ handle: ChildHandle; message: T }> {
  const proc = fork(file, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [...process.execArgv, ...execArgv] });
  const child = new Child(name, proc);
  try {
    const message = await child.until(new Promise<T>((resolve) => proc.once('message', (m) => resolve(m as T))), timeoutMs);
    return { handle: child, message };
  } catch (err) {
    await child.stop();
    throw err;
  }
}

/** Spawns a binary in the foreground; `ready` decides when it serves. */
export async function spawnBinary(name: string, cmd: string, args: string[], ready: () => Promise<void>, timeoutMs = 10_000): Promise<ChildHandle> {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const child = new Child(name, proc);
  try {
    await child.until(ready(), timeoutMs);
  } catch (err) {
    await child.stop();
    throw err;
  }
  return child;
}
