import { InvalidArgumentError } from 'commander';

/** Option parsers shared by the CLI's command modules: commander prints the message with the option. */
export const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('must be an integer');
  return n;
};
export const json = (v: string) => {
  try {
    return JSON.parse(v) as unknown;
  } catch {
    throw new InvalidArgumentError('must be JSON');
  }
};
