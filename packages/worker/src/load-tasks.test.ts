import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTaskRegistry, loadTasksModule, TasksModuleError } from './load-tasks.js';

// Task modules are plain JS; definitions are checked structurally (name, handler, a schema with
// safeParse), so these fixtures need no imports.
const schema = '{ safeParse: (v) => ({ success: true, data: v }), safeParseAsync: async (v) => ({ success: true, data: v }) }';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pgdispatch-tasks-'));
  await writeFile(path.join(dir, 'named.mjs'), `export const tasks = [{ name: 'emails.send', payload: ${schema}, handler: () => 1 }];`);
  await writeFile(path.join(dir, 'default.mjs'), `export default { name: 'one', payload: ${schema}, handler: () => 1 };`);
  await writeFile(path.join(dir, 'bad.mjs'), `export default [{ name: 'ok', payload: ${schema}, handler: () => 1 }, { name: 'no handler', payload: ${schema} }];`);
  await writeFile(path.join(dir, 'none.mjs'), 'export const other = 1;');
  await writeFile(path.join(dir, 'clash.mjs'), `export const tasks = [{ name: 'noop', payload: ${schema}, handler: () => 1 }];`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loading user tasks (TASKS_MODULE)', () => {
  it('reads a named `tasks` array, relative to cwd', async () => {
    const tasks = await loadTasksModule('./named.mjs', { cwd: dir });
    expect(tasks.map((t) => t.name)).toEqual(['emails.send']);
  });

  it('reads a default export holding one definition', async () => {
    expect((await loadTasksModule(path.join(dir, 'default.mjs'))).map((t) => t.name)).toEqual(['one']);
  });

  it('names every invalid item', async () => {
    await expect(loadTasksModule(path.join(dir, 'bad.mjs'))).rejects.toThrow(/item 1 is not a task definition/);
  });

  it('refuses a module without tasks, and a missing module', async () => {
    await expect(loadTasksModule(path.join(dir, 'none.mjs'))).rejects.toBeInstanceOf(TasksModuleError);
    await expect(loadTasksModule(path.join(dir, 'missing.mjs'))).rejects.toThrow(/cannot load tasks module/);
  });

  it('adds user tasks to the built-ins and rejects a name defined twice', async () => {
    const reg = await loadTaskRegistry({ tasksModule: path.join(dir, 'named.mjs') });
    expect(reg.names()).toEqual(['noop', 'sleep', 'http.request', 'emails.send']);
    await expect(loadTaskRegistry({ tasksModule: path.join(dir, 'clash.mjs') })).rejects.toThrow(/"noop" is defined twice/);
  });
});
