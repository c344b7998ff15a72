import { Command, InvalidArgumentError } from 'commander';
import { int, json } from './cli-args.js';
import type { PgDispatchClient, ScheduleInput, SchedulePatch } from '@pgdispatch/client/client';

interface ScheduleFlags {
  cron?: string;
  timeZone?: string;
  queue?: string;
  task?: string;
  payload?: unknown;
  priority?: number;
  maxAttempts?: number;
  catchUp?: 'all' | 'latest' | 'none';
  disabled?: boolean;
}

const policy = (v: string) => {
  if (v !== 'all' && v !== 'latest' && v !== 'none') throw new InvalidArgumentError('must be all, latest or none');
  return v;
};

function withFields(cmd: Command): Command {
  return cmd
    .option('--time-zone <zone>', 'IANA time zone the expression is read in (default UTC)')
    .option('--payload <json>', 'payload of every job', json)
    .option('--priority <n>', 'lower runs first', int)
    .option('--max-attempts <n>', 'attempts before failed (default: the queue default)', int)
    .option('--catch-up <policy>', 'ticks missed while no api ran: all, latest, none', policy);
}

function patchFrom(o: ScheduleFlags): SchedulePatch {
  return {
    ...(o.cron !== undefined && { cron: o.cron }),
    ...(o.timeZone !== undefined && { timeZone: o.timeZone }),
    ...(o.queue !== undefined && { queue: o.queue }),
    ...(o.task !== undefined && { task: o.task }),
    ...(o.payload !== undefined && { payload: o.payload }),
    ...(o.priority !== undefined && { priority: o.priority }),
    ...(o.maxAttempts !== undefined && { maxAttempts: o.maxAttempts }),
    ...(o.catchUp !== undefined && { catchUp: o.catchUp }),
  };
}

/** `pgdispatch schedules list|get|create|update|delete|pause|resume` over the public API. */
export function scheduleCommands(program: Command, client: (cmd: Command) => PgDispatchClient, print: (v: unknown) => void): void {
  const schedules = program.command('schedules').description('recurring jobs (cron)');
  schedules.command('list').option('--queue <name>', 'only schedules of this queue').action(async (o: { queue?: string }, cmd: Command) =>
    print(await client(cmd).listSchedules(o.queue === undefined ? {} : { queue: o.queue })));
  schedules.command('get <name>').action(async (name: string, _o: unknown, cmd: Command) => print(await client(cmd).getSchedule(name)));
  withFields(schedules.command('create <name> <cron> <queue> <task>').description('create a schedule, e.g. create nightly "0 3 * * *" reports report.build'))
    .option('--disabled', 'create it paused')
    .action(async (name: string, cron: string, queue: string, task: string, o: ScheduleFlags, cmd: Command) => {
      const input: ScheduleInput = { name, cron, queue, task, ...patchFrom(o), ...(o.disabled && { enabled: false }) };
      print(await client(cmd).createSchedule(input));
    });
  withFields(schedules.command('update <name>').description('change the given fields'))
    .option('--cron <expr>', 'new cron expression (restarts the schedule from now)')
    .option('--queue <name>')
    .option('--task <task>')
    .action(async (name: string, o: ScheduleFlags, cmd: Command) => print(await client(cmd).updateSchedule(name, patchFrom(o))));
  schedules.command('delete <name>').action(async (name: string, _o: unknown, cmd: Command) => print(await client(cmd).deleteSchedule(name)));
  schedules.command('pause <name>').action(async (name: string, _o: unknown, cmd: Command) => print(await client(cmd).pauseSchedule(name)));
  schedules.command('resume <name>').description('enable again; the next tick is the first after now').action(async (name: string, _o: unknown, cmd: Command) =>
    print(await client(cmd).resumeSchedule(name)));
}
