// One Envoy-like access log line per request (Istio's default text format, abridged).
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

export const stdoutAccessLog: AccessLogSink = (entry) => {
  process.stdout.write(formatAccessLog(entry) + '\n');
};
