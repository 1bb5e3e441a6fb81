import type { WebSocket } from 'ws';
import type { RequestTypes, AnyRequestTypes } from '../protocol/requests.js';
import type { SendData } from '../frames/payload.js';
import type { Connection } from './transport/connection.js';
import type { UpgradeRejectionReason } from './operations/counters.js';
import type { ConnectOptions } from './manager-options.js';
import type { MessagingManager } from './messaging.js';
import type { InboundAdmission } from './inbound/shared-limits.js';
import type { InboundValidation } from './inbound/validation.js';

/**
 * What the handshake and session code (upgrade.ts, protocol-handler.ts, welcome.ts, session-inbound.ts) uses of
 * the manager: the messaging core plus the few members manager.ts adds. `WebSocketConnectionManager` implements
 * it; those files import this type, not manager.ts, so that the manager can import them without an import cycle.
 */
export interface ManagerHost<
  In = unknown,
  Out extends SendData = SendData,
  Data = unknown,
  Rpc extends RequestTypes = AnyRequestTypes,
> extends MessagingManager<In, Out, Data, Rpc> {
  readonly admission: InboundAdmission;
  readonly validation: InboundValidation;
  readonly isShuttingDown: boolean;
  withinRateLimit(conn: Connection): boolean;
  upgradeRejected(
    reason: UpgradeRejectionReason,
    remoteAddress: string | undefined,
    status: number,
    detail?: Record<string, string | undefined>,
  ): void;
  connect(socket: WebSocket, clientId?: string, options?: ConnectOptions<Data>): Promise<string>;
}
