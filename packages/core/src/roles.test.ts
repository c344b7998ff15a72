import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.js';
import { listensTo, resolveRole } from './roles.js';

describe('resolveRole', () => {
  it('role all without DATABASE_URL does everything in-process on an embedded database', () => {
    expect(resolveRole(parseConfig({}))).toEqual({
      role: 'all',
      servesApi: true,
      dispatches: true,
      runsMaintenance: true,
      executes: true,
      transport: 'in-process',
      needsDatabase: true,
      embeddedDatabase: true,
      queues: '*',
    });
  });

  it('role all with DATABASE_URL uses that database and its queue list', () => {
    const plan = resolveRole({ DISPATCH_ROLE: 'all', DATABASE_URL: 'postgres://x/y', LISTEN_QUEUES: ['emails'] });
    expect(plan.embeddedDatabase).toBe(false);
    expect(plan.needsDatabase).toBe(true);
    expect(plan.queues).toEqual(['emails']);
  });

  it('role api serves and dispatches but executes nothing', () => {
    expect(resolveRole({ DISPATCH_ROLE: 'api', DATABASE_URL: 'postgres://x/y', LISTEN_QUEUES: '*' })).toEqual({
      role: 'api',
      servesApi: true,
      dispatches: true,
      runsMaintenance: true,
      executes: false,
      transport: null,
      needsDatabase: true,
      embeddedDatabase: false,
      queues: [],
    });
  });

  it('role worker executes over HTTP and never needs a database', () => {
    expect(resolveRole({ DISPATCH_ROLE: 'worker', DATABASE_URL: undefined, LISTEN_QUEUES: ['a', 'b'] })).toEqual({
      role: 'worker',
      servesApi: false,
      dispatches: false,
      runsMaintenance: false,
      executes: true,
      transport: 'http',
      needsDatabase: false,
      embeddedDatabase: false,
      queues: ['a', 'b'],
    });
  });
});

describe('listensTo', () => {
  it('* listens to every queue; a list only to its members', () => {
    expect(listensTo('*', 'anything')).toBe(true);
    expect(listensTo(['a', 'b'], 'b')).toBe(true);
    expect(listensTo(['a', 'b'], 'c')).toBe(false);
    expect(listensTo([], 'a')).toBe(false);
  });
});
