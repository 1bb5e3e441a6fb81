import { describe } from 'vitest';
import { startApache } from '../helpers/apache.js';
import { requireBinary } from '../helpers/binaries.js';
import { proxyScenarios } from './scenarios.js';

requireBinary('apache2'); // without it this file fails at once with what to install, before any test

// A real Apache httpd (Debian's apache2) running deploy/apache/websocket.conf, its tunnel timeout scaled from 60 s
// down to 1 s.
describe('behind a real Apache reverse proxy (the documented config)', () => {
  proxyScenarios('apache', startApache);
});
