import { clusterSuite } from './cluster-suite.js';

// Three server processes share one redis-server (test/redis/cluster-suite.ts).
clusterSuite('redis');
