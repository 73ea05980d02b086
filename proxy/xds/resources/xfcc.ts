// HttpConnectionManager's x-forwarded-client-cert settings: forwardClientCertDetails and
// setCurrentClientCertDetails.
import { FieldErrors, obj, str, wrapped, type Obj } from './fields.js';

export type XfccMode = 'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';

export interface XfccConfig {
  mode: XfccMode;
  subject: boolean;
  cert: boolean;
  chain: boolean;
  dns: boolean;
  uri: boolean;
}

const MODES: ReadonlySet<string> = new Set(['SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET', 'ALWAYS_FORWARD_ONLY']);

export function decodeXfcc(hcm: Obj, field: string, errors: FieldErrors): XfccConfig {
  const raw = str(hcm.forwardClientCertDetails) ?? 'SANITIZE';
  let mode: XfccMode = 'SANITIZE';
  if (MODES.has(raw)) mode = raw as XfccMode;
  else errors.add(`${field}.forwardClientCertDetails`, `"${raw}" is not one of ${[...MODES].join(', ')}`);
  const set = obj(hcm.setCurrentClientCertDetails) ?? {};
  return {
    mode,
    subject: wrapped(set.subject) === true,
    cert: set.cert === true,
    chain: set.chain === true,
    dns: set.dns === true,
    uri: set.uri === true,
  };
}
