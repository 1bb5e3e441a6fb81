/**
 * Result of the `authenticate` hook: `false` refuses (401 at the upgrade, close 4504 at the `hello`), `'expired'`
 * refuses credentials that were valid but have expired (401 at the upgrade, close 4505 at the `hello`: the bundled
 * client then calls its `auth()` again once), `true` accepts anonymously; an object accepts with:
 * - `clientId`: a fixed client id (one connection per id: a second one replaces the first). Default: a random id.
 * - `data`: per connection, of the manager's `Data` type (echoed in `connect` events and shown to
 *   `authorizeResume` and `authorizeSubscribe`).
 * - `principal`: the stable identity of the user (e.g. a user id). A protocol session is bound to the principal of
 *   the connection that created it: a resume from another principal is answered `fresh` (`token-rejected`);
 *   `maxSessionsPerPrincipal` counts sessions by it.
 */
export type AuthResult<Data = unknown> =
  boolean | 'expired' | { clientId?: string; data?: Data; principal?: string };
