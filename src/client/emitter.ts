/** A listener for one event; see {@link Emitter.on}. */
export type Listener<T> = (arg: T) => void;

/**
 * A tiny typed event emitter. `E` maps each event name to the type of its single argument.
 * A throwing listener does not stop the others or the client: its error is rethrown on a fresh task.
 */
export class Emitter<E> {
  private readonly listeners: { [K in keyof E]?: Set<Listener<E[K]>> } = {};

  /** Subscribes to `event`. Returns a function that unsubscribes. */
  on<K extends keyof E>(event: K, fn: Listener<E[K]>): () => void {
    (this.listeners[event] ??= new Set()).add(fn);
    return () => void this.listeners[event]?.delete(fn);
  }

  protected emit<K extends keyof E>(event: K, arg: E[K]): void {
    for (const fn of [...(this.listeners[event] ?? [])]) {
      try {
        fn(arg);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}
