import { describe, expect, it } from 'vitest';
import { destinationVerdict, hostAllowed, parseAllowList } from './http-destinations.js';

describe('destinationVerdict, default policy', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.9.9.9', 'loopback'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['0.0.0.0', 'this network'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fd00:ec2::254', 'unique local'],
    ['10.2.3.4', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:10.0.0.1', 'private'],
    ['224.0.0.1', 'multicast'],
  ])('refuses %s (%s)', (address, what) => {
    const v = destinationVerdict(address);
    expect(v.allowed).toBe(false);
    expect(v.reason).toContain(what);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])('allows the public address %s', (address) => {
    expect(destinationVerdict(address)).toEqual({ allowed: true, reason: 'public address' });
  });

  it('refuses what is not an address at all', () => {
    expect(destinationVerdict('localhost').allowed).toBe(false);
  });
});

describe('HTTP_TASK_ALLOW', () => {
  const { list } = parseAllowList('127.0.0.1,10.1.0.0/16,hooks.internal');

  it('an allowed address or range passes, its neighbours do not', () => {
    expect(destinationVerdict('127.0.0.1', list).allowed).toBe(true);
    expect(destinationVerdict('::ffff:127.0.0.1', list).allowed).toBe(true);
    expect(destinationVerdict('127.0.0.2', list).allowed).toBe(false);
    expect(destinationVerdict('10.1.200.3', list).allowed).toBe(true);
    expect(destinationVerdict('10.2.0.1', list).allowed).toBe(false);
    expect(destinationVerdict('169.254.169.254', list).allowed).toBe(false);
  });

  it('host names match exactly, case-insensitively', () => {
    expect(hostAllowed('HOOKS.internal', list)).toBe(true);
    expect(hostAllowed('hooks.internal.', list)).toBe(true);
    expect(hostAllowed('evil.hooks.internal', list)).toBe(false);
  });
});
