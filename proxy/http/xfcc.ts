// x-forwarded-client-cert on the way upstream, Envoy's semantics: SANITIZE drops it;
// FORWARD_ONLY / APPEND_FORWARD / SANITIZE_SET act only on mTLS connections (else sanitize);
// ALWAYS_FORWARD_ONLY passes it untouched. The element this proxy adds is
// By=<own URI>;Hash=<sha256 of the peer cert>;Cert;Chain;Subject;URI;DNS.
import type { XfccConfig } from '../xds/resources/xfcc.js';
import type { DownstreamPeer } from '../listener/tls-termination.js';

export const XFCC = 'x-forwarded-client-cert';

function quote(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function xfccElement(cfg: XfccConfig, peer: DownstreamPeer): string {
  const parts: string[] = [];
  if (peer.localUri) parts.push(`By=${peer.localUri}`);
  parts.push(`Hash=${peer.certHash ?? ''}`);
  if (cfg.cert) parts.push(`Cert=${quote(encodeURIComponent(peer.certPem ?? ''))}`);
  if (cfg.chain) parts.push(`Chain=${quote(encodeURIComponent(peer.certPem ?? ''))}`);
  if (cfg.subject) parts.push(`Subject=${quote(peer.subject ?? '')}`);
  if (cfg.uri) for (const u of peer.uriSans ?? []) parts.push(`URI=${u}`);
  if (cfg.dns) for (const d of peer.dnsSans ?? []) parts.push(`DNS=${d}`);
  return parts.join(';');
}

/** Rewrites the flat upstream header list in place of its XFCC entries. */
export function applyXfcc(headers: string[], cfg: XfccConfig, peer: DownstreamPeer | undefined): string[] {
  if (cfg.mode === 'ALWAYS_FORWARD_ONLY') return headers;
  const mtls = peer?.mtls === true;
  if (mtls && cfg.mode === 'FORWARD_ONLY') return headers;
  const existing: string[] = [];
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].toLowerCase() === XFCC) existing.push(headers[i + 1]);
    else out.push(headers[i], headers[i + 1]);
  }
  if (!mtls || !peer || cfg.mode === 'SANITIZE') return out;
  const own = xfccElement(cfg, peer);
  const value = cfg.mode === 'APPEND_FORWARD' && existing.length > 0 ? `${existing.join(',')},${own}` : own;
  out.push(XFCC, value);
  return out;
}
