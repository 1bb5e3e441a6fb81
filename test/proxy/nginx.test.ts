import { describe } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';
import { startNginx } from '../helpers/nginx.js';
import { proxyScenarios } from './scenarios.js';

requireBinary('nginx'); // without it this file fails at once with what to install, before any test

// A real nginx running deploy/nginx/websocket.conf, its proxy timeouts scaled from 60 s down to 1 s.
describe('behind a real nginx reverse proxy (the documented config)', () => {
  proxyScenarios('nginx', startNginx);
});
