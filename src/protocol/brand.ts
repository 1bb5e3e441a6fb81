/**
 * `instanceof` across copies of this package. The ESM and CommonJS builds (or two installed versions) each hold
 * their own classes, so a plain `instanceof` is false for an object made by the other copy. A branded class keeps
 * a `Symbol.for` brand on its constructor and answers `instanceof` by looking for that brand on the prototype
 * chain, so both copies recognise each other's objects, subclasses included.
 */
const BRAND = Symbol.for('websocket-stabilizer.class');
const own = Object.prototype.hasOwnProperty;

type Branded = { [BRAND]?: string };

/** Give `cls` its brand (call it from a `static {}` block of the class and of each subclass). */
export function brand(cls: object, name: string): void {
  Object.defineProperty(cls, BRAND, { value: `websocket-stabilizer:${name}` });
}

/** The `[Symbol.hasInstance]` of a branded class: `cls` or a class with its brand is on `value`'s prototype chain. */
export function hasBrandedInstance(cls: object, value: unknown): boolean {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  // A subclass without a brand of its own (e.g. an app's `class MyError extends StabilizerError`): plain check.
  if (!own.call(cls, BRAND)) return Function.prototype[Symbol.hasInstance].call(cls, value);
  const wanted = (cls as Branded)[BRAND];
  for (let p: unknown = Object.getPrototypeOf(value); p !== null; p = Object.getPrototypeOf(p)) {
    if (!own.call(p, 'constructor')) continue;
    const ctor = (p as { constructor: unknown }).constructor;
    if (ctor === cls) return true;
    if (typeof ctor === 'function' && own.call(ctor, BRAND) && (ctor as Branded)[BRAND] === wanted)
      return true;
  }
  return false;
}
