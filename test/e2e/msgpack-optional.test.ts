// msgpackr is an optional peer dependency: a server without it never selects `stabilizer.v1.msgpack` and keeps
// working. Runs the built server (needs dist/: `npx tsup`) in a child process that cannot resolve msgpackr.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const fixture = fileURLToPath(new URL('../fixtures/msgpack-absent.mjs', import.meta.url));

describe('server without msgpackr installed', () => {
  it('selects stabilizer.v1 for clients that also offer it, no subprotocol for msgpack-only offers; nothing throws', async () => {
    const { stdout } = await run(process.execPath, [fixture], { timeout: 20_000 });
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({
      loaded: false,
      both: 'stabilizer.v1',
      msgpackOnly: 'error: Server sent no subprotocol', // no protocol selected: plain mode, which ws refuses
      json: 'stabilizer.v1',
    });
  }, 30_000);
});
