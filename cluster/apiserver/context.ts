// What every handler needs: the store, the type registry, authn/authz and admission.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '../store/types.js';
import type { Registry } from './registry/registry.js';
import type { Authenticator, UserInfo } from './authn.js';
import type { Authorizer } from './authz.js';
import type { TokenSigner } from './tokens.js';
import type { WebhookAdmission } from './admission/webhooks.js';
import type { RequestInfo } from './requestinfo.js';

/** Serves GET pods/{name}/log (the kubelet owns logs; the cluster plugs this in). */
export type PodLogHandler = (req: IncomingMessage, res: ServerResponse, pod: { namespace: string; name: string; query: URLSearchParams }) => void | Promise<void>;

export interface ApiContext {
  store: Store;
  registry: Registry;
  authn: Authenticator;
  authorize: Authorizer;
  signer: TokenSigner;
  webhooks: WebhookAdmission;
  podLogs?: PodLogHandler;
}

export interface Request {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  info: RequestInfo;
  user: UserInfo;
}
