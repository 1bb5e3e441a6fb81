import { clusterOpsSuite } from './cluster-ops-suite.js';

clusterOpsSuite('redis-cluster');
