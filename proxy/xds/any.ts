// google.protobuf.Any as proto-loader hands it over in an xDS response.
import { unpackAny } from '../../api/xds/protos.js';
import type { Obj } from './resources/fields.js';

/**
 * With the `json` loader option an Any is already decoded (`{ '@type': url, ...fields }`);
 * otherwise it is `{ typeUrl, value }`.
 */
export interface AnyMessage {
  '@type'?: string;
  typeUrl?: string;
  type_url?: string;
  value?: Buffer;
  [field: string]: unknown;
}

export function decodeAny(any: AnyMessage): { typeUrl: string; body: Obj } {
  if (typeof any['@type'] === 'string') {
    const { '@type': typeUrl, ...body } = any;
    return { typeUrl, body };
  }
  const typeUrl = any.type_url ?? any.typeUrl ?? '';
  if (!typeUrl) throw new Error('Any without a type URL');
  return { typeUrl, body: unpackAny<Obj>({ typeUrl, value: any.value }) };
}
