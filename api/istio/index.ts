export * from './networking.js';
