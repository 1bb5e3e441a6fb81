import { CloseCode } from '../protocol/close-codes.js';
import type { WebSocketConnectionManager } from '../server/manager.js';

/** Who asked for an action, for its log line. */
export interface ActionCaller {
  by: 'token' | 'hook';
  remoteAddress: string | undefined;
}

/** The HTTP answer to an action. */
export interface ActionOutcome {
  status: number;
  text: string;
}

/**
 * The dashboard's actions (only with `actions: true`, only for authenticated callers), each logged:
 * - `disconnect` `{"clientId": "...", "resume": true}`: close that client with 1012 (its session is kept, it
 *   resumes) or, without `resume`, with 1000 (its session ends). 404 for an unknown client.
 * - `drain`: `manager.drain()` (readiness false; connections carry on).
 */
export async function runAction(
  manager: WebSocketConnectionManager,
  name: string,
  body: string,
  caller: ActionCaller,
): Promise<ActionOutcome> {
  const log = { event: 'dashboard.action', action: name, by: caller.by, remoteAddress: caller.remoteAddress };
  if (name === 'drain') {
    manager.log.warn(log, 'dashboard: drain');
    manager.drain();
    return { status: 200, text: 'draining' };
  }
  if (name !== 'disconnect') return { status: 404, text: 'no such action' };
  let args: unknown;
  try {
    args = JSON.parse(body);
  } catch {
    return { status: 400, text: 'body must be JSON' };
  }
  const { clientId, resume } = (args ?? {}) as { clientId?: unknown; resume?: unknown };
  if (typeof clientId !== 'string') return { status: 400, text: 'clientId must be a string' };
  if (!manager.isConnected(clientId)) return { status: 404, text: 'no such client' };
  const code = resume === true ? CloseCode.ServiceRestart : CloseCode.Normal;
  manager.log.warn({ ...log, clientId, code }, 'dashboard: disconnect');
  await manager.disconnect(clientId, code, 'closed from the dashboard');
  return { status: 200, text: 'disconnected' };
}
