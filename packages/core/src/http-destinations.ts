/**
 * Where the built-in `http.request` task may connect. Pure (no DNS, no sockets): the worker
 * resolves a host once, asks `destinationVerdict` about the address it got, and connects to that
 * same address, so a name that resolves differently a moment later (DNS rebinding) cannot slip
 * through.
 *
 * Default: every public unicast address is allowed; loopback, link-local (cloud metadata
 * endpoints live at 169.254.169.254 and fd00:ec2::254), private, carrier-grade NAT, "this
 * network", multicast and reserved ranges are refused, and so are IPv4-mapped IPv6 forms of them
 * (`::ffff:127.0.0.1`). `HTTP_TASK_ALLOW` lists host names, addresses and CIDR ranges that are
 * allowed anyway.
 */
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Cidr = [Address, number];

/** The ranges refused by default, with the reason a refusal names. */
const DENIED: { cidr: string; reason: string }[] = [
  { cidr: '0.0.0.0/8', reason: '"this network" (0.0.0.0/8)' },
  { cidr: '10.0.0.0/8', reason: 'private (10.0.0.0/8)' },
  { cidr: '100.64.0.0/10', reason: 'carrier-grade NAT (100.64.0.0/10)' },
  { cidr: '127.0.0.0/8', reason: 'loopback (127.0.0.0/8)' },
  { cidr: '169.254.0.0/16', reason: 'link-local, incl. cloud metadata (169.254.0.0/16)' },
  { cidr: '172.16.0.0/12', reason: 'private (172.16.0.0/12)' },
  { cidr: '192.168.0.0/16', reason: 'private (192.168.0.0/16)' },
  { cidr: '224.0.0.0/4', reason: 'multicast (224.0.0.0/4)' },
  { cidr: '240.0.0.0/4', reason: 'reserved (240.0.0.0/4)' },
  // ::/96 holds :: (unspecified), ::1 (loopback) and the deprecated IPv4-compatible forms.
  { cidr: '::/96', reason: 'unspecified, loopback or IPv4-compatible (::/96)' },
  { cidr: 'fe80::/10', reason: 'link-local (fe80::/10)' },
  { cidr: 'fc00::/7', reason: 'unique local, incl. fd00:ec2::254 metadata (fc00::/7)' },
  { cidr: 'ff00::/8', reason: 'multicast (ff00::/8)' },
];
const DENIED_PARSED: { range: Cidr; reason: string }[] = DENIED.map((d) => ({ range: ipaddr.parseCIDR(d.cidr) as Cidr, reason: d.reason }));

/** HTTP_TASK_ALLOW, parsed: host names (lower case, exact) and address ranges. */
export interface DestinationAllowList {
  hosts: string[];
  ranges: string[];
}

export const EMPTY_ALLOW_LIST: DestinationAllowList = Object.freeze({ hosts: [], ranges: [] }) as DestinationAllowList;

const HOST_PATTERN = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$/;

/**
 * Parses `host,cidr,address,…`. A bare address becomes a /32 or /128. Returns the problems
 * instead of throwing, so the config schema can name the variable.
 */
export function parseAllowList(raw: string | undefined): { list: DestinationAllowList; problems: string[] } {
  const list: DestinationAllowList = { hosts: [], ranges: [] };
  const problems: string[] = [];
  for (const entry of (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const bare = entry.startsWith('[') && entry.endsWith(']') ? entry.slice(1, -1) : entry;
    if (ipaddr.isValidCIDR(bare)) {
      const [addr, bits] = ipaddr.parseCIDR(bare);
      list.ranges.push(`${addr.toString()}/${bits}`);
    } else if (ipaddr.isValid(bare)) {
      const addr = ipaddr.parse(bare);
      list.ranges.push(`${addr.toString()}/${addr.kind() === 'ipv4' ? 32 : 128}`);
    } else if (HOST_PATTERN.test(entry.toLowerCase())) {
      list.hosts.push(entry.toLowerCase().replace(/\.$/, ''));
    } else {
      problems.push(`${JSON.stringify(entry)} is neither a host name, an IP address nor a CIDR range`);
    }
  }
  return { list, problems };
}

export type DestinationVerdict = { allowed: true; reason: string } | { allowed: false; reason: string };

/** Whether `host` (a name from the URL, without brackets) is on the allow list by name. */
export function hostAllowed(host: string, allow: DestinationAllowList): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return allow.hosts.includes(h);
}

/**
 * The verdict on connecting to `address` (an IP literal, as DNS returned it). IPv4-mapped IPv6
 * addresses are judged as the IPv4 address they carry, both against the deny list and against
 * the allow list.
 */
export function destinationVerdict(address: string, allow: DestinationAllowList = EMPTY_ALLOW_LIST): DestinationVerdict {
  if (!ipaddr.isValid(address)) return { allowed: false, reason: `${JSON.stringify(address)} is not an IP address` };
  let addr: Address = ipaddr.parse(address);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  for (const r of allow.ranges) {
    const range = ipaddr.parseCIDR(r) as Cidr;
    if (range[0].kind() === addr.kind() && addr.match(range)) return { allowed: true, reason: `allowed by HTTP_TASK_ALLOW ${r}` };
  }
  for (const d of DENIED_PARSED) {
    if (d.range[0].kind() === addr.kind() && addr.match(d.range)) return { allowed: false, reason: `${addr.toString()} is ${d.reason}` };
  }
  return { allowed: true, reason: 'public address' };
}
