/** The part of `window` / `document` the client listens to; absent in Node. */
interface Target {
  addEventListener?(type: string, fn: () => void): void;
  removeEventListener?(type: string, fn: () => void): void;
  visibilityState?: string;
}

/**
 * Listens for the browser telling us that timers may have been asleep or the network is back:
 * `online` and `pageshow` (bfcache restore) call `wake(true)`, `visibilitychange` to visible calls `wake(false)`.
 * Does nothing where there is no `addEventListener` / `document` (Node). Returns a function that stops listening.
 */
export function watchEnvironment(wake: (reconnectNow: boolean) => void): () => void {
  const win = globalThis as Target;
  const doc = (globalThis as { document?: Target }).document;
  const now = (): void => wake(true);
  const visible = (): void => {
    if (doc?.visibilityState !== 'hidden') wake(false);
  };
  // One function for adding and for removing: the browser bundle has a size budget.
  const listen = (m: 'addEventListener' | 'removeEventListener'): void => {
    win[m]?.('online', now);
    win[m]?.('pageshow', now);
    doc?.[m]?.('visibilitychange', visible);
  };
  listen('addEventListener');
  return () => listen('removeEventListener');
}
