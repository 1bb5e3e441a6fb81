/** The part of `window` / `document` the client listens to; absent in Node. */
interface Target {
  addEventListener?(type: string, fn: () => void): void;
  removeEventListener?(type: string, fn: () => void): void;
  visibilityState?: string;
}

/**
 * Listens for the browser telling us that the network is back or the page changed visibility: `online` and
 * `pageshow` (bfcache restore) call `wake(true)`; `visibilitychange` calls `visibility(hidden)`, and so does the
 * start. Does nothing where there is no `addEventListener` / `document` (Node).
 * Returns a function that stops listening.
 */
export function watchEnvironment(
  wake: (reconnectNow: boolean) => void,
  visibility: (hidden: boolean) => void,
): () => void {
  const win = globalThis as Target;
  const doc = (globalThis as { document?: Target }).document;
  const now = (): void => wake(true);
  const visible = (): void => visibility(doc?.visibilityState === 'hidden');
  visible();
  // One function for adding and for removing: the browser bundle has a size budget.
  const listen = (m: 'addEventListener' | 'removeEventListener'): void => {
    win[m]?.('online', now);
    win[m]?.('pageshow', now);
    doc?.[m]?.('visibilitychange', visible);
  };
  listen('addEventListener');
  return () => listen('removeEventListener');
}
