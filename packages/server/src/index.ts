/** Audient's server: configuration, wiring, HTTP app. */
export { loadConfig, type Config } from './config.js';
export { createContext, type AudientContext } from './context.js';
export { buildApp } from './http/app.js';
export { startServer, type RunningServer } from './server.js';
export { bootstrap } from './bootstrap.js';
