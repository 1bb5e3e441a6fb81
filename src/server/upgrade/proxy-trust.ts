import { isIP } from 'node:net';
import proxyAddr from 'proxy-addr';

/**
 * Which peers are proxies whose forwarding headers (`X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`)
 * are believed:
 * - `false` (or `0`): none; the client is the TCP peer, the headers are ignored.
 * - `true`: one hop, as `1`: the peer is a proxy you control (whatever its address); the client is the rightmost
 *   `X-Forwarded-For` entry, the address that proxy saw.
 * - a number `n`: `n` hops (e.g. `2` for a cloud load balancer, then nginx): the client is the `n`-th entry from the
 *   right.
 * - a list of proxy addresses and CIDR ranges (`['10.0.0.0/8', '192.0.2.7']`, and the names `'loopback'`,
 *   `'linklocal'`, `'uniquelocal'`): walking `X-Forwarded-For` from the right, every address in the list is a proxy;
 *   the client is the first one that is not.
 *
 * The `Forwarded` header (RFC 7239) is not read: a spoofed one changes nothing.
 */
export type TrustProxy = boolean | number | readonly string[];

/** What an upgrade request says about its client, believing only trusted proxies. */
export interface ClientView {
  /** The client's address: the TCP peer's, or the first untrusted hop of `X-Forwarded-For`. */
  ip: string | undefined;
  /**
   * Whether `ip` is believed to be the client's own address: one a trusted proxy forwarded, or a peer that is not
   * a loopback, private, link-local or shared (CGNAT) address (those are most often a proxy). The default
   * `maxSessionsPerIp` counts only such addresses.
   */
  isClient: boolean;
  /** Whether the client used TLS: the connection's, or the `X-Forwarded-Proto` of a trusted peer. */
  secure: boolean;
  /** The host the client asked for: the `Host` header, or the `X-Forwarded-Host` of a trusted peer. */
  host: string | undefined;
}

/** The request facts {@link ClientResolver} reads: the TCP peer, the connection's TLS, a header by lowercase name. */
export interface RequestFacts {
  peer: string | undefined;
  encrypted: boolean;
  header(name: string): string | undefined;
}

export type ClientResolver = (facts: RequestFacts) => ClientView;

type Trust = (address: string, hop: number) => boolean;

/** Loopback, private (RFC 1918, fc00::/7), link-local and shared (100.64.0.0/10) addresses. */
const isLocal = proxyAddr.compile(['loopback', 'linklocal', 'uniquelocal', '100.64.0.0/10']);

/** A trust function for `trustProxy`; throws a `TypeError` for a list entry that is not an address or range. */
export function compileTrust(trustProxy: TrustProxy | undefined): Trust | undefined {
  if (trustProxy === undefined || trustProxy === false || trustProxy === 0) return undefined;
  if (trustProxy === true) return (_address, hop) => hop < 1;
  if (typeof trustProxy === 'number') {
    if (!Number.isInteger(trustProxy) || trustProxy < 0) {
      throw new TypeError(`trustProxy: a hop count must be a non-negative integer, got ${trustProxy}`);
    }
    const hops = trustProxy;
    return (_address, hop) => hop < hops;
  }
  if (!Array.isArray(trustProxy)) throw new TypeError('trustProxy: expected a boolean, a number or a list');
  return proxyAddr.compile([...trustProxy]);
}

/** Build the resolver of `trustProxy` once (a bad list throws here, at `attach`, not per request). */
export function clientResolver(trustProxy: TrustProxy | undefined): ClientResolver {
  const trust = compileTrust(trustProxy);
  return ({ peer, encrypted, header }) => {
    const ownHost = header('host');
    if (peer === undefined || !trust || !trust(peer, 0)) {
      // An untrusted peer: its forwarding headers, whatever they say, are ignored.
      return { ip: peer, isClient: peer !== undefined && !local(peer), secure: encrypted, host: ownHost };
    }
    const chain = proxyAddr.all(
      { headers: { 'x-forwarded-for': header('x-forwarded-for') }, socket: { remoteAddress: peer } } as never,
      trust,
    );
    // The client: the last address the walk reached, unless it is not an address at all (a forged entry behind
    // more hops than there are proxies); then the hop that forwarded it.
    let at = chain.length - 1;
    while (at > 0 && isIP(chain[at]!) === 0) at--;
    const ip = chain[at];
    const proto = firstValue(header('x-forwarded-proto'))?.toLowerCase();
    return {
      ip,
      isClient: at > 0 || (ip !== undefined && !local(ip)),
      secure: proto === undefined ? encrypted : proto === 'https' || proto === 'wss',
      host: firstValue(header('x-forwarded-host')) ?? ownHost,
    };
  };
}

function local(address: string): boolean {
  return isIP(address) !== 0 && isLocal(address, 0);
}

/** The first entry of a comma-separated header (the one the proxy nearest the client set), if any. */
function firstValue(value: string | undefined): string | undefined {
  const first = value?.split(',')[0]?.trim();
  return first ? first : undefined;
}
