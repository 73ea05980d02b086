// The admin kubeconfig, written for kubectl and for the cluster's own components.
import * as fs from 'node:fs';
import { stringify } from 'yaml';

/** Credentials: a bearer token, or a client certificate and its key (PEM). */
export type KubeconfigCredentials = { token: string } | { clientCertPem: string; clientKeyPem: string };

export function writeKubeconfig(file: string, opts: { clusterName: string; server: string; caCertPem: string; user?: string } & KubeconfigCredentials): void {
  const user = opts.user ?? 'admin';
  const b64 = (pem: string): string => Buffer.from(pem).toString('base64');
  const credentials = 'token' in opts
    ? { token: opts.token }
    : { 'client-certificate-data': b64(opts.clientCertPem), 'client-key-data': b64(opts.clientKeyPem) };
  const context = `${user}@${opts.clusterName}`;
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: opts.clusterName, cluster: { server: opts.server, 'certificate-authority-data': Buffer.from(opts.caCertPem).toString('base64') } }],
    users: [{ name: user, user: credentials }],
    contexts: [{ name: context, context: { cluster: opts.clusterName, user, namespace: 'default' } }],
    'current-context': context,
    preferences: {},
  };
  fs.writeFileSync(file + '.tmp', stringify(doc), { mode: 0o600 });
  fs.renameSync(file + '.tmp', file);
}
