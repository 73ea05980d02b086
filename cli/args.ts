// Flag parsing for the trellis command: --name value, --name=value and boolean --flag, and
// kubectl-style short flags (-o json, -n ns, -A), stored under their letter.
export interface ParsedArgs { command: string; positional: string[]; flags: Map<string, string | true> }

export function parseArgs(argv: string[]): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (/^-[A-Za-z]$/.test(a)) {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('-') && a !== '-A') { flags.set(a.slice(1), next); i++; } else flags.set(a.slice(1), true);
      continue;
    }
    if (!a.startsWith('--')) { positional.push(a); continue; }
    const eq = a.indexOf('=');
    if (eq > 0) { flags.set(a.slice(2, eq), a.slice(eq + 1)); continue; }
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) { flags.set(a.slice(2), next); i++; } else flags.set(a.slice(2), true);
  }
  return { command: positional.shift() ?? 'help', positional, flags };
}

export function stringFlag(args: ParsedArgs, name: string, fallback: string): string {
  const v = args.flags.get(name);
  if (v === true) throw new Error(`--${name} needs a value`);
  return v ?? fallback;
}

export function numberFlag(args: ParsedArgs, name: string, fallback: number): number {
  const v = stringFlag(args, name, String(fallback));
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: ${v} is not a non-negative integer`);
  return n;
}

export function boolFlag(args: ParsedArgs, name: string): boolean {
  const v = args.flags.get(name);
  return v === true || v === 'true';
}

const DURATION_UNITS: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };

/**
 * A Go-style duration flag (kube-apiserver's `--event-ttl=1h0m0s` form: `1h`, `30m`, `90s`,
 * `1h30m`, `500ms`), in seconds.
 */
export function durationFlag(args: ParsedArgs, name: string, fallbackSeconds: number): number {
  const v = args.flags.get(name);
  if (v === undefined) return fallbackSeconds;
  if (v === true) throw new Error(`--${name} needs a value`);
  return parseDuration(v, `--${name}`);
}

export function parseDuration(v: string, what: string): number {
  const parts = /^(?:\d+(?:\.\d+)?(?:h|ms|m|s))+$/.test(v) ? [...v.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)] : [];
  if (parts.length === 0) throw new Error(`${what}: ${JSON.stringify(v)} is not a duration (e.g. 1h, 30m, 90s, 1h30m)`);
  const seconds = parts.reduce((sum, m) => sum + Number(m[1]) * DURATION_UNITS[m[2]], 0);
  if (seconds <= 0) throw new Error(`${what}: ${v} must be greater than zero`);
  return seconds;
}
