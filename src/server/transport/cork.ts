/** A stream that can be corked: the TCP socket under a `ws` WebSocket. */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

// Per-turn write coalescing. A socket written to directly is corked on its first write in an event-loop turn and
// uncorked together with every other such socket in one batch in the check phase of the same loop iteration
// (`setImmediate`), so that all the frames one socket gets in a turn leave in one writev syscall: 10 broadcasts
// from one callback, a welcome and its replay, and also broadcasts triggered by many inbound messages that one
// poll phase delivers. ws's `bufferedAmount` counts corked bytes (`_socket.writableLength`), so the slow-consumer
// cap still holds. The real `setImmediate` is kept at load, so fake timers in a test cannot hold writes back.
const schedule = setImmediate;
let corked: Corkable[] = [];
let spare: Corkable[] = [];
let flushQueued = false;

function flushCorked(): void {
  flushQueued = false;
  const list = corked;
  corked = spare;
  for (let i = 0; i < list.length; i++) list[i]!.uncork();
  list.length = 0;
  spare = list;
}

/** Cork `raw` until the check phase of this loop iteration (the caller checked it is not corked yet). */
export function corkForTurn(raw: Corkable): void {
  raw.cork();
  corked.push(raw);
  if (!flushQueued) {
    flushQueued = true;
    schedule(flushCorked);
  }
}
