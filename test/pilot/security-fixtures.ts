// Loads the security golden fixtures (multi-document YAML, as kubectl would apply them)
// into pilot's inputs, and compares generated resources with their golden JSON files.
// UPDATE_GOLDEN=1 rewrites the goldens (review the diff before committing).
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../../api/kube/index.js';
import { emptyInputs, type ConfigInputs } from '../../pilot/model/inputs.js';

export const FIXTURES = fileURLToPath(new URL('../../../test/pilot/fixtures/security/', import.meta.url));

const BY_KIND: Record<string, keyof ConfigInputs> = {
  Namespace: 'namespaces', Service: 'services', Endpoints: 'endpoints', Pod: 'pods',
  VirtualService: 'virtualServices', DestinationRule: 'destinationRules',
  PeerAuthentication: 'peerAuthentications', AuthorizationPolicy: 'authorizationPolicies',
};

export function loadInputs(...files: string[]): ConfigInputs {
  const inputs = emptyInputs() as unknown as Record<string, KubeObject[]>;
  for (const f of files) {
    for (const doc of parseAllDocuments(fs.readFileSync(FIXTURES + f, 'utf8'))) {
      const obj = doc.toJS() as KubeObject | null;
      if (!obj) continue;
      const kind = BY_KIND[obj.kind ?? ''];
      if (!kind) throw new Error(`${f}: kind ${obj.kind} is not a pilot input`);
      inputs[kind].push(obj);
    }
  }
  return inputs as unknown as ConfigInputs;
}

export function assertGolden(actual: unknown, file: string): void {
  const path = FIXTURES + file;
  const json = JSON.parse(JSON.stringify(actual)) as unknown;
  if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`);
  assert.deepEqual(json, JSON.parse(fs.readFileSync(path, 'utf8')), `generated output differs from ${file} (UPDATE_GOLDEN=1 rewrites it)`);
}
