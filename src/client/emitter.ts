/** A listener for one event; see {@link Emitter.on}. `info` is the event's second argument, if it has one. */
export type Listener<T, I = undefined> = (arg: T, info: I) => void;

/** The second argument of event `K`: `X[K]`, or `undefined` for events without one. */
type Info<X, K> = K extends keyof X ? X[K] : undefined;

/**
 * A tiny typed event emitter. `E` maps each event name to the type of its argument, `X` the events that have a
 * second argument to its type. A throwing listener does not stop the others or the client: its error is rethrown
 * on a fresh task.
 */
export class Emitter<E, X = object> {
  private readonly _listeners: { [K in keyof E]?: Set<Listener<E[K], Info<X, K>>> } = {};

  /** Subscribes to `event`. Returns a function that unsubscribes. */
  on<K extends keyof E>(event: K, fn: Listener<E[K], Info<X, K>>): () => void {
    (this._listeners[event] ??= new Set()).add(fn);
    return () => void this._listeners[event]?.delete(fn);
  }

  protected _emit<K extends keyof E>(event: K, arg: E[K], info?: Info<X, K>): void {
    for (const fn of [...(this._listeners[event] ?? [])]) {
      try {
        fn(arg, info as Info<X, K>);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}
