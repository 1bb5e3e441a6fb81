// A minimal TCP load balancer without sticky sessions, standing in for nginx or an ALB: each new connection goes
// to the next node in turn, skipping nodes that refuse it.
//   BACKENDS=3001,3002,3003 PORT=3000 node examples/cluster/balancer.mjs
import net from 'node:net';

const ports = (process.env.BACKENDS ?? '3001,3002,3003').split(',').map(Number);
let next = 0;

function connect(client, tries) {
  if (tries === 0) return client.destroy();
  const port = ports[next++ % ports.length];
  const upstream = net.connect(port, '127.0.0.1');
  upstream.once('connect', () => {
    console.log(`connection → node ${port}`);
    client.pipe(upstream).pipe(client);
    client.resume();
  });
  upstream.once('error', () => connect(client, tries - 1));
  client.once('close', () => upstream.destroy());
  upstream.once('close', () => client.destroy());
}

net
  .createServer({ pauseOnConnect: true }, (client) => {
    client.on('error', () => client.destroy());
    connect(client, ports.length);
  })
  .listen(Number(process.env.PORT ?? 3000), () =>
    console.log(`balancer on :${process.env.PORT ?? 3000} → ${ports}`),
  );
