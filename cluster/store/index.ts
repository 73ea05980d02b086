export * from './types.js';
export { MemoryStore, type MemoryStoreOptions } from './memory.js';
export { FileStore, type FileStoreOptions } from './file.js';
export { EtcdStore, type EtcdStoreOptions, type EtcdStoreTls } from './etcd.js';
