import { clientTagOf, createViewTokens } from '../../src/domain/view-token.js';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileErrors, validate } from '@readme/openapi-parser';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { zodToValidationError } from '../../src/api/http.js';
import { createPollSchema, listPollsSchema, patchPollSchema } from '../../src/api/routes/polls.schema.js';
import { flaggedVotesSchema, reviewSchema } from '../../src/api/routes/moderation.js';
import { bulkReviewSchema, pollFlaggedVotesSchema } from '../../src/api/routes/poll-moderation.js';
import { devTokenSchema } from '../../src/api/routes/dev.js';
import { myVoteSchema } from '../../src/api/routes/my-vote.js';
import { voteBodySchema } from '../../src/api/routes/votes.js';
import { toAnalyticsResponse } from '../../src/api/services/analytics.js';
import { createCaptcha } from '../../src/api/services/captcha.js';
import { toPollResponse } from '../../src/api/services/polls.js';
import { toResultsResponse } from '../../src/api/services/results.js';
import type { ResultsState } from '../../src/db/results.js';
import { csvColumns } from '../../src/domain/analytics-csv.js';
import * as errors from '../../src/shared/errors.js';
import { HTTP_STATUS } from '../../src/api/error-status.js';
import { toPollUpdate } from '../../src/shared/poll-updates.js';

/**
 * Keeps openapi.yaml honest: a valid OpenAPI 3.1 document whose request schemas are the zod
 * schemas, whose error codes are the ones the code raises (and the contract fixes), and whose
 * response schemas describe what the response builders really return. That its paths are
 * exactly the routes the API serves is checked against the running app, in
 * test/integration/openapi-routes.test.ts.
 */

type S = Record<string, any>;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (rel: string) => readFileSync(join(root, rel), 'utf8');
const doc: S = parse(read('openapi.yaml'));
// CI has a read-only copy of shared/ beside the repository.
const contractPath = join(root, '../shared/contract.md');

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const isObj = (v: unknown): v is S => typeof v === 'object' && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------- document helpers

function pointer(ref: string): S {
  expect(ref.startsWith('#/'), `only local $refs: ${ref}`).toBe(true);
  let node: any = doc;
  for (const part of ref.slice(2).split('/')) node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  expect(node, `dangling $ref ${ref}`).toBeDefined();
  return node;
}

/** Follows $ref; sibling keywords of a $ref (3.1 allows them) override the target's. */
function deref(s: S): S {
  while (isObj(s) && typeof s.$ref === 'string') {
    const { $ref, ...rest } = s;
    s = { ...pointer($ref), ...rest };
  }
  return s;
}

/** A schema with its allOf branches merged in (properties present in two branches become an allOf). */
function flat(schema: S): S {
  const s = deref(schema);
  if (!Array.isArray(s.allOf)) return s;
  const { allOf, ...out } = s as S;
  for (const branch of (allOf as S[]).map(flat)) {
    for (const [k, v] of Object.entries(branch)) {
      if (k === 'properties') {
        out.properties = { ...out.properties };
        for (const [name, p] of Object.entries(v as S)) {
          out.properties[name] = out.properties[name] ? { allOf: [out.properties[name], p] } : p;
        }
      } else if (k === 'required') out.required = [...(out.required ?? []), ...(v as string[])];
      else if (k === 'additionalProperties') out.additionalProperties = out.additionalProperties === true || v === true ? true : v;
      else if (out[k] === undefined) out[k] = v;
    }
  }
  return out;
}

function operations(): Array<{ path: string; method: string; op: S }> {
  const out: Array<{ path: string; method: string; op: S }> = [];
  for (const [path, item] of Object.entries(doc.paths as S)) {
    for (const method of METHODS) if (item[method]) out.push({ path, method, op: item[method] });
  }
  return out;
}

/** The error codes a response schema allows: `const`/`enum` of `error.code`, through refs and combinators. */
function errorCodesOf(schema: S | undefined): string[] {
  if (!schema) return [];
  const s = deref(schema);
  const nested = [...(s.allOf ?? []), ...(s.oneOf ?? []), ...(s.anyOf ?? [])].flatMap((b: S) => errorCodesOf(b));
  if (!s.properties?.error) return nested;
  const codesIn = (e: S): string[] => {
    const x = deref(e);
    const own = x.properties?.code ? deref(x.properties.code) : {};
    return [
      ...(own.const !== undefined ? [own.const] : []),
      ...(own.enum ?? []),
      ...[...(x.allOf ?? []), ...(x.oneOf ?? []), ...(x.anyOf ?? [])].flatMap(codesIn),
    ];
  };
  return [...nested, ...codesIn(s.properties.error)];
}

/** Status → error codes documented under it, over every operation. */
function documentedErrorCodes(): Map<number, Set<string>> {
  const byStatus = new Map<number, Set<string>>();
  for (const { op } of operations()) {
    for (const [status, response] of Object.entries(op.responses as S)) {
      const r = deref(response);
      for (const media of Object.values((r.content ?? {}) as S)) {
        for (const code of errorCodesOf(media.schema)) {
          if (!byStatus.has(Number(status))) byStatus.set(Number(status), new Set());
          byStatus.get(Number(status))!.add(code);
        }
      }
    }
  }
  return byStatus;
}

// ---------------------------------------------------------------- a small JSON Schema checker

const TYPE_CHECKS: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  integer: (v) => Number.isInteger(v),
  number: (v) => typeof v === 'number' && Number.isFinite(v),
  boolean: (v) => typeof v === 'boolean',
  null: (v) => v === null,
  array: (v) => Array.isArray(v),
  object: isObj,
};

/**
 * Checks a value against a document schema. Strict about keys: an object key that the schema
 * neither lists in `properties` nor allows by `additionalProperties` is an undocumented field.
 */
function check(schema: S, v: unknown, at = '$', errs: string[] = []): string[] {
  const s = flat(schema);
  for (const [kind, branches] of [
    ['oneOf', s.oneOf],
    ['anyOf', s.anyOf],
  ] as const) {
    if (!branches) continue;
    const matching = (branches as S[]).filter((b) => check(b, v, at).length === 0).length;
    if (kind === 'oneOf' ? matching !== 1 : matching === 0) errs.push(`${at}: matches ${matching} of the ${kind} branches`);
  }
  if (s.const !== undefined && v !== s.const) errs.push(`${at}: ${JSON.stringify(v)} is not ${JSON.stringify(s.const)}`);
  if (s.enum && !s.enum.includes(v)) errs.push(`${at}: ${JSON.stringify(v)} not in ${JSON.stringify(s.enum)}`);
  if (s.type) {
    const types = ([] as string[]).concat(s.type);
    if (!types.some((t) => TYPE_CHECKS[t](v))) errs.push(`${at}: ${JSON.stringify(v)} is not of type ${types.join('|')}`);
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) errs.push(`${at}: ${v} < ${s.minimum}`);
    if (s.maximum !== undefined && v > s.maximum) errs.push(`${at}: ${v} > ${s.maximum}`);
  }
  if (typeof v === 'string') {
    if (s.pattern && !new RegExp(s.pattern, 'u').test(v)) errs.push(`${at}: ${v} does not match ${s.pattern}`);
    if (s.format === 'date-time' && !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v)) errs.push(`${at}: ${v} is not a date-time`);
    if (s.format === 'uuid' && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)) errs.push(`${at}: ${v} is not a uuid`);
  }
  if (Array.isArray(v)) {
    if (s.maxItems !== undefined && v.length > s.maxItems) errs.push(`${at}: more than ${s.maxItems} items`);
    if (s.items) v.forEach((x, i) => check(s.items, x, `${at}[${i}]`, errs));
  }
  if (isObj(v) && (s.properties || s.required || s.additionalProperties !== undefined || s.propertyNames)) {
    for (const r of s.required ?? []) if (!(r in v)) errs.push(`${at}.${r}: required but missing`);
    for (const [k, x] of Object.entries(v)) {
      if (s.propertyNames?.pattern && !new RegExp(deref(s.propertyNames).pattern, 'u').test(k))
        errs.push(`${at}: key ${k} does not match ${s.propertyNames.pattern}`);
      if (s.properties?.[k]) check(s.properties[k], x, `${at}.${k}`, errs);
      else if (isObj(s.additionalProperties)) check(s.additionalProperties, x, `${at}.${k}`, errs);
      else if (s.additionalProperties !== true) errs.push(`${at}.${k}: not documented`);
    }
  }
  return errs;
}

const schemaOf = (name: string): S => {
  expect(doc.components.schemas[name], `components/schemas/${name}`).toBeDefined();
  return { $ref: `#/components/schemas/${name}` };
};

// ---------------------------------------------------------------- comparing with zod

// `default` is compared separately, against what zod fills in (its JSON Schema omits some defaults).
const COMPARED = ['type', 'enum', 'const', 'minLength', 'maxLength', 'minimum', 'maximum', 'minItems', 'maxItems', 'pattern', 'required'];

/**
 * The constraints of a schema in one canonical form, so that the document's schema and the
 * JSON Schema zod derives from the route's schema compare equal when they accept the same
 * bodies: nullable as a type list, exclusiveMinimum of integers as minimum, no descriptions,
 * and zod's long date-time regex dropped in favour of `format: date-time`.
 */
function norm(schema: S): S {
  let s = deref(schema);
  expect(s.$ref).toBeUndefined();
  if (Array.isArray(s.anyOf) && s.anyOf.length === 2 && s.anyOf.some((b: S) => b.type === 'null')) {
    const { anyOf, ...rest } = s;
    const other = deref(anyOf.find((b: S) => b.type !== 'null'));
    s = { ...rest, ...other, type: [...([] as string[]).concat(other.type), 'null'] };
  }
  expect(s.anyOf ?? s.oneOf ?? s.allOf, 'no other combinators in request schemas').toBeUndefined();
  const out: S = {};
  for (const k of COMPARED) if (s[k] !== undefined) out[k] = s[k];
  if (out.type) out.type = ([] as string[]).concat(out.type).sort();
  if (s.exclusiveMinimum !== undefined) {
    expect(out.type).toEqual(['integer']);
    out.minimum = s.exclusiveMinimum + 1;
  }
  if (s.format === 'date-time') delete out.pattern;
  if (out.required) out.required = [...out.required].sort();
  if (out.required?.length === 0) delete out.required;
  if (s.properties) out.properties = Object.fromEntries(Object.entries(s.properties as S).map(([k, p]) => [k, norm(p)]));
  if (s.items) out.items = norm(s.items);
  if (s.propertyNames) out.propertyNames = norm(s.propertyNames);
  if (s.additionalProperties === false) out.additionalProperties = false;
  else if (isObj(s.additionalProperties)) out.additionalProperties = norm(s.additionalProperties);
  return out;
}

const zodInput = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input' }) as S;

/** The top-level defaults a document schema declares. */
function documentedDefaults(schema: S): S {
  const props = flat(schema).properties ?? {};
  return Object.fromEntries(
    Object.entries(props as S)
      .map(([k, p]) => [k, deref(p).default])
      .filter(([, d]) => d !== undefined),
  );
}

/** The top-level fields zod fills in when they are left out of `minimal`. */
function zodDefaults(schema: z.ZodType, minimal: S): S {
  const parsed = schema.parse(minimal) as S;
  return Object.fromEntries(Object.entries(parsed).filter(([k]) => !(k in minimal)));
}

function requestBodySchema(path: string, method: string): S {
  const body = deref(doc.paths[path][method].requestBody);
  expect(Object.keys(body.content)).toEqual(['application/json']);
  return body.content['application/json'].schema;
}

/** The query parameters of an operation as one object schema. */
function querySchema(path: string, method: string): S {
  const params = [...(doc.paths[path].parameters ?? []), ...(doc.paths[path][method].parameters ?? [])].map(deref).filter((p) => p.in === 'query');
  return {
    type: 'object',
    properties: Object.fromEntries(params.map((p) => [p.name, p.schema])),
    required: params.filter((p) => p.required).map((p) => p.name),
  };
}

// ---------------------------------------------------------------- error codes in the source

/** [status, code] of every AppError the source can raise. */
function errorCodesInSource(): Array<[number, string]> {
  // Every code of the typed table, plus the few answers written inline (404 NOT_FOUND of unknown endpoints).
  const out: Array<[number, string]> = Object.entries(HTTP_STATUS).map(([code, status]) => [status, code]);
  for (const file of readdirSync(join(root, 'src'), { recursive: true }) as string[]) {
    if (!file.endsWith('.ts')) continue;
    const src = read(join('src', file));
    for (const m of src.matchAll(/status\((\d{3})\)\.json\(\{\s*error:\s*\{\s*code:\s*'([A-Z_]+)'/g)) out.push([Number(m[1]), m[2]]);
  }
  return out;
}

// ---------------------------------------------------------------- the tests

describe('openapi.yaml', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    const result = await validate(structuredClone(doc) as Parameters<typeof validate>[0]);
    expect(result.valid ? '' : compileErrors(result)).toBe('');
    // operationIds unique, every $ref resolves
    const ids = operations().map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    JSON.stringify(doc, (k, v) => (k === '$ref' ? (pointer(v), v) : v));
  });

  it('declares every path parameter of a path template', () => {
    for (const { path, method, op } of operations()) {
      const declared = [...(doc.paths[path].parameters ?? []), ...(op.parameters ?? [])]
        .map(deref)
        .filter((p) => p.in === 'path')
        .map((p) => p.name);
      const inTemplate = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      expect(declared.sort(), `${method} ${path}`).toEqual(inTemplate.sort());
    }
  });

  it.skipIf(!existsSync(contractPath))("lists every error code of the contract's table under its status", () => {
    const contract = readFileSync(contractPath, 'utf8');
    const rows = [...contract.matchAll(/^\|\s*(\d{3})\s*\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => [Number(m[1]), m[2]] as const);
    expect(rows.length).toBeGreaterThanOrEqual(15);
    const documented = documentedErrorCodes();
    const missing = rows.filter(([status, code]) => !documented.get(status)?.has(code)).map(([s, c]) => `${s} ${c}`);
    expect(missing).toEqual([]);
  });

  it('documents exactly the error codes the source raises, each under its status', () => {
    const source = errorCodesInSource();
    expect(source.length).toBeGreaterThan(15);
    const documented = documentedErrorCodes();
    const missing = source.filter(([status, code]) => !documented.get(status)?.has(code)).map(([s, c]) => `${s} ${c}`);
    expect(missing, 'raised in src but not documented').toEqual([]);
    const known = new Set(source.map(([s, c]) => `${s} ${c}`));
    const invented = [...documented].flatMap(([s, codes]) => [...codes].map((c) => `${s} ${c}`)).filter((x) => !known.has(x));
    expect(invented, 'documented but never raised').toEqual([]);
  });

  it('describes request bodies and query parameters exactly as the zod schemas', () => {
    // [name, documented schema, zod schema, the smallest valid input]
    const cases: Array<[string, S, z.ZodType, S]> = [
      [
        'POST /api/v1/polls body',
        requestBodySchema('/api/v1/polls', 'post'),
        createPollSchema,
        { question: 'q', poll_type: 'RATING', options: [{ text: 'a' }] },
      ],
      ['PATCH /api/v1/polls/{id} body', requestBodySchema('/api/v1/polls/{id}', 'patch'), patchPollSchema, {}],
      ['POST /api/v1/polls/{id}/votes body', requestBodySchema('/api/v1/polls/{id}/votes', 'post'), voteBodySchema, {}],
      [
        'POST /api/v1/admin/votes/{vote_id}/review body',
        requestBodySchema('/api/v1/admin/votes/{vote_id}/review', 'post'),
        reviewSchema,
        { decision: 'VALID' },
      ],
      [
        'POST /api/v1/polls/{id}/flagged-votes/review body',
        requestBodySchema('/api/v1/polls/{id}/flagged-votes/review', 'post'),
        bulkReviewSchema,
        { decision: 'VALID', prefix: '10.0.0.0/8' },
      ],
      ['POST /api/v1/dev/token body', requestBodySchema('/api/v1/dev/token', 'post'), devTokenSchema, { sub: 1 }],
    ];
    for (const [name, documented, zodSchema, minimal] of cases) {
      expect(norm(documented), name).toEqual(norm(zodInput(zodSchema)));
      expect(documentedDefaults(documented), `${name} defaults`).toEqual(zodDefaults(zodSchema, minimal));
    }

    // Query schemas are strict in zod; OpenAPI parameters cannot say so (the descriptions do).
    const queries: Array<[string, S, z.ZodType]> = [
      ['GET /api/v1/polls query', querySchema('/api/v1/polls', 'get'), listPollsSchema],
      ['GET /api/v1/admin/flagged-votes query', querySchema('/api/v1/admin/flagged-votes', 'get'), flaggedVotesSchema],
      ['GET /api/v1/polls/{id}/flagged-votes query', querySchema('/api/v1/polls/{id}/flagged-votes', 'get'), pollFlaggedVotesSchema],
      ['GET /api/v1/polls/{id}/my-vote query', querySchema('/api/v1/polls/{id}/my-vote', 'get'), myVoteSchema],
    ];
    for (const [name, documented, zodSchema] of queries) {
      const { additionalProperties, ...fromZod } = norm(zodInput(zodSchema));
      expect(additionalProperties).toBe(false);
      expect(norm(documented), name).toEqual(fromZod);
      expect(documentedDefaults(documented), `${name} defaults`).toEqual(zodDefaults(zodSchema, {}));
    }
  });

  it('describes what the response builders return', async () => {
    const creator = { userId: 5, orgId: 3, isAdmin: false };
    const now = new Date('2026-11-28T10:00:00.000Z');
    const pollRow = (over: S) => ({
      poll_id: 7,
      creator_id: 5,
      org_id: 3,
      question: 'Best editor?',
      poll_type: 'SINGLE_CHOICE',
      status: 'ACTIVE',
      is_anonymous: false,
      allow_change_vote: true,
      visibility: 'PUBLIC',
      access_key: null,
      start_time: null,
      end_time: now,
      settings: {
        max_choices: 1,
        require_authentication: false,
        show_results_before_close: true,
        rating_min: 1,
        rating_max: 5,
        captcha: 'flagged',
        require_view_token: false,
        embed_origins: ['https://news.example'],
      },
      created_at: now,
      updated_at: now,
      tiebreak_seed: 'ab'.repeat(32),
      ...over,
    });
    const options = [
      { option_id: 12, poll_id: 7, text: 'vim', image_url: null, display_order: 0 },
      { option_id: 13, poll_id: 7, text: 'emacs', image_url: 'https://example.org/e.png', display_order: 1 },
    ];
    type Found = Parameters<typeof toPollResponse>[0];
    const polls = [
      toPollResponse({ poll: pollRow({}), options } as unknown as Found, null),
      toPollResponse(
        { poll: pollRow({ poll_type: 'RANKED', visibility: 'PRIVATE', access_key: 'k'.repeat(24), start_time: now }), options } as unknown as Found,
        creator,
      ),
    ];
    expect(polls[1]).toHaveProperty('tiebreak_seed_hash');
    expect(polls[1]).toHaveProperty('access_key');
    for (const p of polls) expect(check(schemaOf('Poll'), p)).toEqual([]);
    expect(
      check(schemaOf('PollWithViewToken'), {
        ...polls[0],
        view_token: createViewTokens('a-secret-of-16-chars', 3_600_000).issue(7, clientTagOf('192.0.2.1', 'ua'), now.getTime()),
      }),
    ).toEqual([]);
    expect(check(schemaOf('PollPage'), { items: polls, next_cursor: '7' })).toEqual([]);

    const state = (over: Partial<ResultsState>): ResultsState => ({
      poll_id: 7,
      poll_type: 'SINGLE_CHOICE',
      status: 'ACTIVE',
      total_votes: 7,
      pending_review: 1,
      seq: 3,
      updated_at: now,
      final: false,
      options: [
        { option_id: 12, text: 'a', vote_count: 4, percentage: 57.14 },
        { option_id: 13, text: 'b', vote_count: 3, percentage: 42.86 },
        { option_id: 14, text: 'c', vote_count: 0, percentage: 0 },
      ],
      ...over,
    });
    const ranked = state({
      poll_type: 'RANKED',
      status: 'CLOSED',
      ranked_input: {
        optionIds: [12, 13, 14],
        seed: 'ab'.repeat(32),
        ballots: [
          { ranking: [12, 13], count: 3 },
          { ranking: [13, 12], count: 3 },
          { ranking: [14], count: 1 },
        ],
      },
    });
    const rating = state({
      poll_type: 'RATING',
      rating_input: { optionIds: [12, 13, 14], ratingMin: 1, ratingMax: 5, histograms: { 12: { 5: 2, 4: 1 }, 13: { 1: 1 } } },
    });
    const results = [state({}), ranked, rating].map(toResultsResponse);
    expect(results[1].ranked).toHaveProperty('seed');
    expect(results[1].ranked?.tie_breaks.length).toBeGreaterThan(0);
    expect(results[2].rating?.options.find((o) => o.option_id === 14)?.mean).toBeNull();
    for (const r of results) expect(check(schemaOf('Results'), r)).toEqual([]);
    expect(check(schemaOf('Results'), doc.components.schemas.Results.example)).toEqual([]);
    for (const s of [state({}), ranked, rating]) expect(check(schemaOf('LiveResultsMessage'), toPollUpdate(s))).toEqual([]);
    expect(check(schemaOf('LiveResultsMessage'), doc.components.schemas.LiveResultsMessage.example)).toEqual([]);

    type Row = Parameters<typeof toAnalyticsResponse>[1];
    const row = {
      poll_id: 7,
      total_votes: 12,
      unique_voters: 10,
      unique_viewers: 20,
      completion_rate: 0.5,
      avg_response_time_seconds: 4.2,
      median_response_time_seconds: 3.1,
      geographic_distribution: { DE: 9, ZZ: 3 },
      device_breakdown: { desktop: 8, mobile: 4 },
      time_series: [{ hour: now.toISOString(), votes: 12 }],
      time_series_last_hour: [{ minute: now.toISOString(), votes: 2 }],
      suspicious_votes: 1,
      rejected_votes: 2,
      updated_at: now,
    } as unknown as Row;
    for (const a of [toAnalyticsResponse(7, undefined), toAnalyticsResponse(7, row)]) expect(check(schemaOf('Analytics'), a)).toEqual([]);

    // The vote route writes its 202 body inline.
    const accepted = /sendJson\(res, 202, \{([^}]*)\}/.exec(read('src/api/routes/votes.ts'));
    const keys = [...accepted![1].matchAll(/(\w+):/g)].map((m) => m[1]).sort();
    expect(keys).toEqual(Object.keys(flat(schemaOf('VoteAccepted')).properties).sort());
    expect(check(schemaOf('VoteAccepted'), { status: 'accepted', vote_id: '0193c0de-0000-7000-8000-000000000001', changed: false })).toEqual([]);

    const captcha = createCaptcha({ secret: 's', redis: null as never, usedKey: (x) => x, maxNumber: 1000, ttlSeconds: 60 });
    const challenge = await captcha.challenge();
    expect(check(schemaOf('AltchaChallenge'), challenge)).toEqual([]);

    // Every error the code can build, as the body it becomes, against its documented schema.
    const zodFailure = createPollSchema.safeParse({ question: '', extra: 1 });
    const samples = [
      errors.validationError('end_time must be after start_time', { field: 'end_time' }),
      zodToValidationError(zodFailure.error!),
      errors.invalidOption(99),
      errors.invalidSelection('Select at least one option'),
      errors.authRequired(),
      errors.invalidToken(),
      errors.forbidden(),
      errors.AppError.of({ code: 'RESULTS_HIDDEN', message: 'Results of this poll are hidden until it closes' }),
      errors.pollNotFound(),
      errors.notFound('No such vote'),
      errors.pollNotActive(),
      errors.alreadyVoted(),
      errors.votePending(2),
      errors.originNotAllowed(),
      errors.pollExpired(),
      errors.payloadTooLarge(16 * 1024),
      errors.rateLimited(2.5),
      errors.unavailable(),
      errors.captchaRequired('Solve the CAPTCHA', challenge),
      errors.pollNotDraft(),
      errors.conflict('The poll changed meanwhile; try again'),
      errors.internalError(),
    ];
    expect(new Set(samples.map((e) => e.code))).toEqual(new Set(Object.keys(HTTP_STATUS)));
    const documented = documentedErrorCodes();
    for (const err of samples) {
      expect(check(schemaOf(`Error_${err.code}`), errors.errorBody(err)), err.code).toEqual([]);
      const status = HTTP_STATUS[err.code];
      expect(documented.get(status)?.has(err.code), `${status} ${err.code}`).toBe(true);
    }
  });

  it('documents Retry-After on 429 and the challenge on 428', () => {
    for (const { path, method, op } of operations()) {
      if (op.responses['429']) expect(deref(op.responses['429']).headers?.['Retry-After'], `${method} ${path}`).toBeDefined();
      if (op.responses['428']) {
        const schema = flat(deref(op.responses['428']).content['application/json'].schema);
        expect(flat(schema.properties.error).required).toContain('challenge');
      }
    }
  });

  it('gives the CSV export its real header rows', () => {
    const csv = doc.paths['/api/v1/polls/{id}/votes.csv'].get.responses['200'].content['text/csv'];
    expect(csv.examples.identified.value.split('\n')[0]).toBe(csvColumns(false).join(','));
    expect(csv.examples.anonymous.value.split('\n')[0]).toBe(csvColumns(true).join(','));
  });

  it('documents the security schemes: bearer JWT, and HTTP Basic for Bull Board', () => {
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    expect(doc.components.securitySchemes.basicAuth).toMatchObject({ type: 'http', scheme: 'basic' });
    expect(doc.paths['/admin/queues'].get.security).toEqual([{ basicAuth: [] }, { bearerAuth: [] }]);
    expect(doc['x-websocket']?.url).toMatch(/^ws:\/\/[^/]+:3001\/ws$/);
  });
});
