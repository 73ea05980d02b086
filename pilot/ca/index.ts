export * from './pki.js';
export * from './secret-store.js';
export * from './token-reviewer.js';
export * from './authority.js';
export * from './metrics.js';
export * from './server.js';
export * from './root-publisher.js';
export * from './bootstrap.js';
