import { z } from 'zod';

const isoDate = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

/** PostgreSQL's text refuses NUL: a string carrying one is the caller's mistake (400), not ours (500). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching NUL is the point.
export const NO_NUL = /^[^\u0000]*$/;
export const NO_NUL_MESSAGE = 'must not contain NUL characters';

const ORIGIN = /^https?:\/\/[^/?#@\s\\]+$/i;

const settingsSchema = z.strictObject({
  max_choices: z.number().int().min(1).max(100).optional(),
  require_authentication: z.boolean().optional(),
  show_results_before_close: z.boolean().optional(),
  rating_min: z.number().int().min(-100).max(100).optional(),
  rating_max: z.number().int().min(-100).max(100).optional(),
  captcha: z.enum(['off', 'flagged', 'always']).optional(),
  require_view_token: z.boolean().optional(),
  // Checked and normalised (lower case, no default port) by the service.
  embed_origins: z.array(z.string().max(300).regex(ORIGIN, 'must be an origin: scheme://host[:port], no path')).max(20).optional(),
});

const optionSchema = z.strictObject({
  text: z.string().trim().min(1).max(200).regex(NO_NUL, NO_NUL_MESSAGE),
  image_url: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .regex(NO_NUL, NO_NUL_MESSAGE)
    .nullable()
    .optional(),
});

/** POST /api/v1/polls */
export const createPollSchema = z.strictObject({
  question: z.string().trim().min(1).max(500).regex(NO_NUL, NO_NUL_MESSAGE),
  poll_type: z.enum(['SINGLE_CHOICE', 'MULTIPLE_CHOICE', 'RANKED', 'RATING']),
  options: z.array(optionSchema).min(1).max(50),
  is_anonymous: z.boolean().default(false),
  allow_change_vote: z.boolean().default(false),
  visibility: z.enum(['PUBLIC', 'PRIVATE', 'ORGANIZATION']).default('PUBLIC'),
  start_time: isoDate.nullable().default(null),
  end_time: isoDate.nullable().default(null),
  settings: settingsSchema.default({}),
  status: z.enum(['DRAFT', 'ACTIVE']).default('DRAFT'),
});
export type CreatePollBody = z.infer<typeof createPollSchema>;

/** PATCH /api/v1/polls/:id: any field while DRAFT (checked by the service). */
export const patchPollSchema = z.strictObject({
  question: z.string().trim().min(1).max(500).regex(NO_NUL, NO_NUL_MESSAGE).optional(),
  poll_type: z.enum(['SINGLE_CHOICE', 'MULTIPLE_CHOICE', 'RANKED', 'RATING']).optional(),
  options: z.array(optionSchema).min(1).max(50).optional(),
  is_anonymous: z.boolean().optional(),
  allow_change_vote: z.boolean().optional(),
  visibility: z.enum(['PUBLIC', 'PRIVATE', 'ORGANIZATION']).optional(),
  start_time: isoDate.nullable().optional(),
  end_time: isoDate.nullable().optional(),
  settings: settingsSchema.optional(),
});
export type PatchPollBody = z.infer<typeof patchPollSchema>;

/** GET /api/v1/polls */
export const listPollsSchema = z.strictObject({
  status: z.enum(['DRAFT', 'ACTIVE', 'CLOSED']).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z
    .string()
    .regex(/^[1-9][0-9]{0,15}$/, 'not a cursor from this API')
    .optional(),
  creator: z.literal('me').optional(),
});
