/**
 * Which addresses POST /servers may register (no SSRF through registration). Only IP literals
 * in strict notation are taken (no host names: what a name resolves to can change after the
 * check; no "127.1", hex or integer forms; no IPv6 zone ids). IPv4-mapped IPv6 addresses are
 * judged as the IPv4 address they carry.
 *
 * Allowed: public unicast and private networks (RFC 1918, IPv6 unique-local), where the
 * backends of a REST API normally live. Refused: loopback, link-local (169.254/16, fe80::/10),
 * cloud metadata addresses, unspecified, multicast, broadcast, carrier-grade NAT, NAT64/6to4/
 * Teredo and the other reserved classes. `admin.allowPrivateTargets: true` lifts the refusal
 * for all but the addresses that can never be a server (unspecified, multicast, broadcast).
 */
import ipaddr from 'ipaddr.js';

export type TargetVerdict =
  | { ok: true; address: string; family: 4 | 6 }
  | { ok: false; status: 400 | 403; reason: string };

/** ipaddr.js range names that are allowed without allowPrivateTargets. */
const ROUTABLE = new Set(['unicast', 'private', 'uniqueLocal']);
/** Never a server, whatever the configuration. */
const NEVER = new Set(['unspecified', 'multicast', 'broadcast']);
/** Metadata / host-agent endpoints of cloud providers that sit in otherwise allowed classes. */
const METADATA = new Set(['169.254.169.254', '169.254.170.2', 'fd00:ec2::254', '100.100.100.200', '168.63.129.16', '192.0.0.192']);

export function checkTarget(ip: string, allowPrivateTargets: boolean): TargetVerdict {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  if (ipaddr.IPv4.isValidFourPartDecimal(ip)) addr = ipaddr.IPv4.parse(ip);
  else if (!ip.includes('%') && ipaddr.IPv6.isValid(ip)) addr = ipaddr.IPv6.parse(ip);
  else return { ok: false, status: 400, reason: `"${ip}" is not an IP address in standard notation (host names are not taken)` };
  if (addr instanceof ipaddr.IPv6 && addr.isIPv4MappedAddress()) addr = addr.toIPv4Address();
  const address = addr.toString();
  const range = addr.range();
  if (NEVER.has(range)) return { ok: false, status: 403, reason: `${address} is ${range}: never a server` };
  if (!allowPrivateTargets) {
    if (METADATA.has(address)) return { ok: false, status: 403, reason: `${address} is a cloud metadata address` };
    if (!ROUTABLE.has(range)) return { ok: false, status: 403, reason: `${address} is ${range} (set admin.allowPrivateTargets to allow it)` };
  }
  return { ok: true, address, family: addr.kind() === 'ipv4' ? 4 : 6 };
}
