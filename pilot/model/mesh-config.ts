// The MeshConfig settings pilot honours besides security: Istio's accessLogFile and
// accessLogEncoding. An empty file means no access log config (the proxy's default line);
// JSON makes every HTTP connection manager log Istio's default fields as one JSON object.
export type AccessLogEncoding = 'TEXT' | 'JSON';

export interface MeshOptions {
  accessLogFile: string;
  accessLogEncoding: AccessLogEncoding;
}

export function meshOptions(o?: Partial<MeshOptions>): MeshOptions {
  const encoding = o?.accessLogEncoding ?? 'TEXT';
  if (encoding !== 'TEXT' && encoding !== 'JSON') throw new Error(`MeshConfig.accessLogEncoding: '${String(encoding)}' is not TEXT or JSON`);
  return { accessLogFile: o?.accessLogFile ?? '', accessLogEncoding: encoding };
}
