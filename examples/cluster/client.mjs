// A Node client that prints what happens to its session and checks the ticks it receives: none missing, none twice.
//   node examples/cluster/client.mjs ws://localhost:3000/ws
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../dist/client.js';

const client = new StabilizerClient(process.argv[2] ?? 'ws://localhost:3000/ws', { WebSocket });
const lastTick = new Map(); // node → last n seen
let problems = 0;

client.on('open', ({ sessionId, resumed }) =>
  console.log(`open: session ${sessionId.slice(0, 8)} ${resumed ? 'RESUMED' : 'new'}`),
);
client.on('fresh', ({ reason }) => reason !== 'new' && console.log(`fresh session (${reason})`));
client.on('reconnecting', ({ attempt, delayMs }) =>
  console.log(`reconnecting (attempt ${attempt}) in ${delayMs} ms`),
);
client.on('message', (m) => {
  if (m.type !== 'tick') return;
  const last = lastTick.get(m.node);
  if (last !== undefined && m.n !== last + 1) {
    problems++;
    console.log(`!! tick ${m.n} from node ${m.node} after ${last}`);
  }
  lastTick.set(m.node, m.n);
  console.log(`tick ${m.n} from node ${m.node}${problems ? ` (problems: ${problems})` : ''}`);
});
