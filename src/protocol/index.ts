export * from './close-codes.js';
export * from './error-codes.js';
export * from './messages.js';
