// One Envoy-like access log line per request (Istio's default text format, abridged), or
// the lines of the access loggers the listener's config asks for (log-format.ts).
import fs from 'node:fs';
import type { LogFormatter } from './log-format.js';

export interface AccessLogEntry {
  startTime: Date;
  method: string;
  path: string;
  protocol: string;
  responseCode: number;
  responseFlags: string;
  bytesReceived: number;
  bytesSent: number;
  durationMs: number;
  forwardedFor?: string;
  userAgent?: string;
  requestId?: string;
  authority?: string;
  upstreamHost?: string;
  upstreamCluster?: string;
  downstreamLocal?: string;
  downstreamRemote?: string;
  routeName?: string;
  /** The downstream's verified URI SAN (mTLS chains). */
  downstreamPeerPrincipal?: string;
  /** The upstream's verified URI SAN (upstream TLS). */
  upstreamPeerPrincipal?: string;
  /** Downstream TLS SNI (%REQUESTED_SERVER_NAME%). */
  requestedServerName?: string;
  /** Why the proxy answered itself (%RESPONSE_CODE_DETAILS%). */
  responseCodeDetails?: string;
  /** The request's headers, for %REQ(name)% (lower-case names, as node gives them). */
  requestHeaders?: Record<string, string | string[] | undefined>;
  /** Access loggers of the listener's config (HCM access_log); none: the default text line. */
  loggers?: readonly AccessLogger[];
}

/** A file/stdout access logger from the config: where the lines go and their format. */
export interface AccessLogger {
  path: string;
  formatter: LogFormatter;
  /** JSON formats get a newline appended; a text format is written as it renders (Envoy). */
  newline: boolean;
}

const dash = (v: string | undefined): string => (v === undefined || v === '' ? '-' : v);

export function formatAccessLog(e: AccessLogEntry): string {
  return `[${e.startTime.toISOString()}] "${e.method} ${e.path} ${e.protocol}" ${e.responseCode} ${dash(e.responseFlags)} `
    + `${e.bytesReceived} ${e.bytesSent} ${Math.round(e.durationMs)} "${dash(e.forwardedFor)}" "${dash(e.userAgent)}" `
    + `"${dash(e.requestId)}" "${dash(e.authority)}" "${dash(e.upstreamHost)}" ${dash(e.upstreamCluster)} `
    + `${dash(e.downstreamLocal)} ${dash(e.downstreamRemote)} ${dash(e.routeName)}`;
}

/** Receives each request's entry; formatting is the sink's job, so a sink that drops entries costs nothing. */
export type AccessLogSink = (entry: AccessLogEntry) => void;

const files = new Map<string, fs.WriteStream>();

/** Writes a configured logger's line: /dev/stdout and /dev/stderr are the process's own streams. */
export function writeAccessLog(logger: AccessLogger, entry: AccessLogEntry): void {
  const line = logger.formatter.render(entry) + (logger.newline ? '\n' : '');
  if (logger.path === '/dev/stdout') { process.stdout.write(line); return; }
  if (logger.path === '/dev/stderr') { process.stderr.write(line); return; }
  let out = files.get(logger.path);
  if (!out) {
    out = fs.createWriteStream(logger.path, { flags: 'a' });
    out.on('error', () => files.delete(logger.path));
    files.set(logger.path, out);
  }
  out.write(line);
}

export const stdoutAccessLog: AccessLogSink = (entry) => {
  if (entry.loggers?.length) {
    for (const l of entry.loggers) writeAccessLog(l, entry);
    return;
  }
  process.stdout.write(formatAccessLog(entry) + '\n');
};
