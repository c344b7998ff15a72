/**
 * Loads user tasks from the module named by TASKS_MODULE (the caller passes the value; only
 * apps/server reads the environment). The module is plain JavaScript (build TypeScript first)
 * and exports its TaskDefinitions as the default export or as a named `tasks` export: an array,
 * or a single definition.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { builtinTasks, type BuiltinTaskOptions } from './builtin-tasks.js';
import { isTaskDefinition, TaskRegistry } from './task.js';
import type { TaskDefinition } from './task.js';

export class TasksModuleError extends Error {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TasksModuleError';
  }
}

/**
 * Imports `specifier` and returns its validated task definitions. A path (`./x.js`, `/abs/x.mjs`)
 * resolves against `cwd` (default the process's working directory); anything else is imported
 * as a package name. Throws TasksModuleError naming every invalid export.
 */
export async function loadTasksModule(specifier: string, opts: { cwd?: string } = {}): Promise<TaskDefinition[]> {
  const isPath = specifier.startsWith('.') || path.isAbsolute(specifier);
  const target = isPath ? pathToFileURL(path.resolve(opts.cwd ?? process.cwd(), specifier)).href : specifier;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(target)) as Record<string, unknown>;
  } catch (err) {
    throw new TasksModuleError(`cannot load tasks module ${JSON.stringify(specifier)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const exported = mod.tasks ?? mod.default;
  if (exported === undefined) {
    throw new TasksModuleError(`tasks module ${JSON.stringify(specifier)} has neither a default export nor a \`tasks\` export`);
  }
  const list: unknown[] = Array.isArray(exported) ? exported : [exported];
  const problems = list.flatMap((t, i) => (isTaskDefinition(t) ? [] : [`item ${i} is not a task definition (use defineTask)`]));
  if (list.length === 0) problems.push('it exports no tasks');
  if (problems.length > 0) throw new TasksModuleError(`tasks module ${JSON.stringify(specifier)}: ${problems.join('; ')}`);
  return list as TaskDefinition[];
}

/**
 * The registry a worker process runs with: the built-in tasks (`builtins`: false for none, or the
 * selection and http.request policy) plus, when `tasksModule` is set, the module's tasks. A user
 * task may not reuse the name of a built-in that is switched on (the registry rejects duplicates).
 */
export async function loadTaskRegistry(opts: { tasksModule?: string; cwd?: string; builtins?: boolean | BuiltinTaskOptions } = {}): Promise<TaskRegistry> {
  const tasks = opts.builtins === false ? [] : builtinTasks(opts.builtins === true ? {} : opts.builtins);
  if (opts.tasksModule) tasks.push(...(await loadTasksModule(opts.tasksModule, { cwd: opts.cwd })));
  try {
    return new TaskRegistry(tasks);
  } catch (err) {
    throw new TasksModuleError(err instanceof Error ? err.message : String(err), { cause: err });
  }
}
