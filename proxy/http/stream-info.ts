// What happened to one request, filled in by the stages and read by stats and the access log.
export interface StreamInfo {
  startTime: Date;
  startNs: bigint;
  routeName?: string;
  cluster?: string;
  upstreamHost?: string;
  /** Upstream TLS: the server's verified URI SAN. */
  upstreamPrincipal?: string;
  responseFlags: string[];
  responseCode: number;
  bytesReceived: number;
  bytesSent: number;
  requestId: string;
}

export function newStreamInfo(requestId: string): StreamInfo {
  return { startTime: new Date(), startNs: process.hrtime.bigint(), responseFlags: [], responseCode: 0, bytesReceived: 0, bytesSent: 0, requestId };
}

export function elapsedMs(info: StreamInfo): number {
  return Number(process.hrtime.bigint() - info.startNs) / 1e6;
}
