import { clusterSuite } from './cluster-suite.js';

// Three server processes share one Redis Cluster of 3 masters and 3 replicas (test/redis/cluster-suite.ts).
clusterSuite('redis-cluster');
