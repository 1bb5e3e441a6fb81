import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, startServer, upgradeStatus } from '../helpers/server.js';

afterEach(closeAllServers);

/** An error as http-errors, Hono's HTTPException and Fastify's errors make it: a `status` or `statusCode`. */
function httpError(status: number, key: 'status' | 'statusCode' = 'status'): Error {
  return Object.assign(new Error(`refused with ${status}`), { [key]: status });
}

describe('authenticate refusing with an HTTP status', () => {
  it('a thrown or rejected error with status/statusCode 400-599 answers that status', async () => {
    const s = await startServer(
      {},
      {
        authenticate: (req) => {
          const q = new URL(req.url ?? '/', 'http://x').searchParams;
          const status = Number(q.get('status'));
          if (q.has('sync')) throw httpError(status);
          return Promise.reject(httpError(status, q.has('code') ? 'statusCode' : 'status'));
        },
      },
    );
    const errors: string[] = [];
    s.manager.on('error', (e) => void errors.push(e.error.message));
    expect(await upgradeStatus(`${s.url}?status=403&sync`)).toBe(403);
    expect(await upgradeStatus(`${s.url}?status=429`)).toBe(429);
    expect(await upgradeStatus(`${s.url}?status=404&code`)).toBe(404);
    expect(await upgradeStatus(`${s.url}?status=503`)).toBe(503);
    // Out of range or not an integer: the documented 401.
    expect(await upgradeStatus(`${s.url}?status=302`)).toBe(401);
    expect(await upgradeStatus(`${s.url}?status=200`)).toBe(401);
    expect(await upgradeStatus(`${s.url}?status=600`)).toBe(401);
    expect(s.manager.getConnectionCount()).toBe(0);
    // A deliberate 4xx refusal is not an error; a 5xx or an error without a usable status is.
    expect(errors).toEqual(['refused with 503', 'refused with 302', 'refused with 200', 'refused with 600']);
  });
});
