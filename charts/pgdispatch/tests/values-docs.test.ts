import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { configSchema } from '@pgdispatch/core/config';
import { chartDir, effectiveEnv, find, FULLNAME, podSpec, render } from './helm.js';

const valuesText = readFileSync(join(chartDir, 'values.yaml'), 'utf8');
const values = parse(valuesText) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as SchemaNode;

interface SchemaNode {
  type?: string | string[];
  description?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  oneOf?: SchemaNode[];
}

const params = [...valuesText.matchAll(/^\s*## @param (\S+) (.+)$/gm)].map((m) => ({ path: m[1]!, description: m[2]! }));
const documented = new Set(params.map((p) => p.path));

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Keys with no `## @param` of their own or of an ancestor (an ancestor's @param covers a free-form map). */
function undocumented(node: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(node).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (documented.has(path)) return [];
    if (isPlainObject(value) && Object.keys(value).length > 0) return undocumented(value, path);
    return [path];
  });
}

function hasKey(path: string): boolean {
  const keys = path.split('.');
  const parent = keys.slice(0, -1).reduce<unknown>((cur, key) => (isPlainObject(cur) ? cur[key] : undefined), values);
  return isPlainObject(parent) && keys.at(-1)! in parent;
}

function schemaAt(path: string): SchemaNode | undefined {
  return path.split('.').reduce<SchemaNode | undefined>((cur, key) => cur?.properties?.[key], schema);
}

describe('values.yaml documentation and schema', () => {
  it('every key has a ## @param description', () => {
    expect(undocumented(values)).toEqual([]);
  });

  it('every ## @param names a key that exists, once', () => {
    for (const { path } of params) expect(hasKey(path), path).toBe(true);
    expect(params.map((p) => p.path).filter((p, i, all) => all.indexOf(p) !== i)).toEqual([]);
  });

  it('keys are grouped under ## @section headings', () => {
    const firstSection = valuesText.indexOf('## @section');
    const firstParam = valuesText.indexOf('## @param');
    expect(firstSection).toBeGreaterThan(-1);
    expect(firstSection).toBeLessThan(firstParam);
    expect(valuesText.match(/^## @section /gm)!.length).toBeGreaterThanOrEqual(8);
  });

  it('the schema types every documented key', () => {
    const missing = params.filter(({ path }) => {
      const node = schemaAt(path);
      return !node || (node.type === undefined && node.oneOf === undefined);
    });
    expect(missing.map((p) => p.path)).toEqual([]);
  });

  it('the schema closes every object whose keys the chart owns', () => {
    const open: string[] = [];
    const walk = (node: SchemaNode, path: string) => {
      if (node.properties) {
        if (node.additionalProperties !== false) open.push(path || '(root)');
        for (const [k, child] of Object.entries(node.properties)) walk(child, path ? `${path}.${k}` : k);
      }
    };
    walk(schema, '');
    expect(open).toEqual([]);
  });

});

/**
 * The chart against the server's own config schema (packages/core's zod `configSchema`, the one
 * place settings are defined): every variable the chart renders is one the server reads, every
 * setting the server has is rendered or excluded here with a reason, and `config.*` keys agree with
 * the schema on name, default and bounds. A setting added to the schema fails here until the
 * chart handles or excludes it.
 */
describe('values.yaml against the server config schema', () => {
  const toEnv = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
  const serverVars = Object.keys(configSchema.shape);
  const serverDefaults = configSchema.parse({}) as Record<string, unknown>;
  const serverJson = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as { properties: Record<string, { minimum?: number; maximum?: number; enum?: string[] }> };
  /** Settings the chart deliberately never sets, and why. */
  const NOT_SET_BY_THE_CHART: Record<string, string> = {
    PGDISPATCH_DATA_DIR: 'embedded PostgreSQL only; the chart requires an external database',
    EMBEDDED_PG_PORT: 'embedded PostgreSQL only; the chart requires an external database',
  };
  /** Chart-internal variables that are not settings (Kubernetes expands them into WORKER_KEYS). */
  const CHART_INTERNAL = ['PGDISPATCH_WORKER_CREDENTIAL'];

  async function renderedVars(): Promise<Set<string>> {
    // Every optional variable switched on, both tiers.
    const objects = await render({
      config: { tasksModule: '/app/tasks/index.mjs' },
      database: { listenUrl: 'postgres://direct@db:5432/app' },
      worker: { enabled: true },
    });
    const vars = new Set<string>();
    for (const name of [FULLNAME, `${FULLNAME}-worker`]) {
      for (const v of effectiveEnv(objects, podSpec(find(objects, 'Deployment', name)).containers[0]!).keys()) vars.add(v);
    }
    return vars;
  }

  it('the chart renders only variables the server reads', async () => {
    const unknown = [...(await renderedVars())].filter((v) => !serverVars.includes(v) && !CHART_INTERNAL.includes(v));
    expect(unknown).toEqual([]);
  });

  it('every server setting is rendered by the chart or excluded with a reason', async () => {
    const rendered = await renderedVars();
    const missing = serverVars.filter((v) => !rendered.has(v) && !(v in NOT_SET_BY_THE_CHART));
    expect(missing).toEqual([]);
    // An exclusion the chart renders after all, or that the schema no longer has, is stale.
    expect(Object.keys(NOT_SET_BY_THE_CHART).filter((v) => rendered.has(v) || !serverVars.includes(v))).toEqual([]);
  });

  it('config.* keys name server settings and share their defaults', () => {
    const config = values.config as Record<string, unknown>;
    expect(Object.keys(config).length).toBeGreaterThan(10);
    for (const [key, chartDefault] of Object.entries(config)) {
      const env = toEnv(key);
      expect(serverVars, `config.${key} → ${env}`).toContain(env);
      // "" in values.yaml is "unset" (the server's default applies). The chart's value goes through
      // the setting's own schema, as the ConfigMap string would, so lists compare parsed.
      const field = (configSchema.shape as Record<string, z.ZodType>)[env]!;
      expect(field.parse(chartDefault === '' ? undefined : String(chartDefault)), `config.${key} default`).toEqual(serverDefaults[env]);
    }
  });

  it('config.* bounds in values.schema.json are within the server\'s (the chart never accepts what the server refuses)', () => {
    const chartConfig = schema.properties!.config!.properties!;
    for (const [key, node] of Object.entries(chartConfig) as [string, SchemaNode & { minimum?: number; maximum?: number; enum?: string[] }][]) {
      const server = serverJson.properties[toEnv(key)]!;
      if (server.minimum !== undefined) expect(node.minimum, `config.${key} minimum`).toBeGreaterThanOrEqual(server.minimum);
      if (server.maximum !== undefined && node.maximum !== undefined) expect(node.maximum, `config.${key} maximum`).toBeLessThanOrEqual(server.maximum);
      if (server.enum) expect(node.enum, `config.${key} enum`).toEqual(server.enum);
    }
  });

  it('the ConfigMap carries each config.* key under its variable name', () => {
    const configMap = readFileSync(join(chartDir, 'templates', 'configmap.yaml'), 'utf8');
    for (const key of Object.keys(values.config as object)) expect(configMap, key).toMatch(new RegExp(`^  ${toEnv(key)}: `, 'm'));
  });
});
