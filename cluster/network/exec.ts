import { execFile } from 'node:child_process';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program with an argument vector (never through a shell, so names and addresses
 * from API objects cannot inject anything). Resolves with the exit code instead of
 * rejecting, so callers decide which failures are expected (e.g. "already exists").
 */
export function runCommand(file: string, args: readonly string[], input?: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
        // spawn failure (ENOENT...), not a non-zero exit
        reject(new Error(`${file}: ${err.message}`));
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Runs a program and rejects with its stderr when it exits non-zero. */
export async function mustRun(file: string, args: readonly string[], input?: string): Promise<string> {
  const r = await runCommand(file, args, input);
  if (r.code !== 0) {
    throw new Error(`${file} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}
