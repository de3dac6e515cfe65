import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { assertCanReadPoll, isPollManager } from '../../domain/poll-access.js';
import { checkEndInFuture, checkOptionImages, checkShape, embedOriginsOf, normalizeSettings, type ImageHosts } from '../../domain/poll-settings.js';
import { tiebreakSeedHash } from '../../domain/tally/seed.js';
import { findPoll, insertPoll, listPolls, replaceOptions, transitionPoll, updatePoll, withOptions, type PollWithOptions } from '../../db/polls.js';
import type { DB } from '../../db/schema.js';
import { authRequired, conflict, forbidden, pollNotActive, pollNotDraft, pollNotFound, validationError } from '../../shared/errors.js';
import { announcePollChange, closePoll, type PollChangeDeps } from '../../shared/poll-changes.js';
import { scheduleAutoClose } from '../../shared/queues.js';
import type { Principal } from '../../shared/auth.js';
import type { CreatePollBody, PatchPollBody } from '../routes/polls.schema.js';
import type { CreationLimit } from './creation-limit.js';

/** The Poll of the contract; `access_key` only for its creator, the tie-break seed's commitment for RANKED polls. */
export function toPollResponse({ poll, options }: PollWithOptions, caller: Principal | null) {
  return {
    poll_id: poll.poll_id,
    creator_id: poll.creator_id,
    question: poll.question,
    poll_type: poll.poll_type,
    status: poll.status,
    is_anonymous: poll.is_anonymous,
    allow_change_vote: poll.allow_change_vote,
    visibility: poll.visibility,
    start_time: poll.start_time?.toISOString() ?? null,
    end_time: poll.end_time?.toISOString() ?? null,
    settings: { ...poll.settings, embed_origins: poll.settings.embed_origins ?? [] },
    created_at: poll.created_at.toISOString(),
    options: options.map((o) => ({ option_id: o.option_id, text: o.text, image_url: o.image_url, display_order: o.display_order })),
    ...(poll.poll_type === 'RANKED' ? { tiebreak_seed_hash: tiebreakSeedHash(poll.tiebreak_seed) } : {}),
    ...(poll.visibility === 'PRIVATE' && caller?.userId === poll.creator_id ? { access_key: poll.access_key } : {}),
  };
}

const accessFacts = (p: PollWithOptions) => ({ ...p.poll, show_results_before_close: p.poll.settings.show_results_before_close });

/** Creating, editing, publishing and closing polls. New polls get `partitions` partitions. */
export function createPollService(deps: PollChangeDeps & { db: Kysely<DB>; partitions: number; imageHosts: ImageHosts; creationLimit: CreationLimit }) {
  const { db, lifecycle } = deps;

  /** The poll, when the caller may change it: its creator, or (for closing) an admin too. */
  async function loadManaged(pollId: number, caller: Principal | null, adminMay = false): Promise<PollWithOptions> {
    if (!caller) throw authRequired();
    const found = await findPoll(db, pollId);
    if (!found) throw pollNotFound();
    if (adminMay ? !isPollManager(found.poll, caller) : caller.userId !== found.poll.creator_id) {
      // A caller who cannot even read the poll must not learn it exists.
      assertCanReadPoll(accessFacts(found), caller, undefined);
      throw forbidden('Only the poll creator may do this');
    }
    return found;
  }

  /**
   * Schedules the close of an active poll with an end time. Called inside the transaction that
   * makes it so: when Redis cannot take the job, nothing is committed and the answer is 503.
   */
  async function scheduleCloseOf(poll: PollWithOptions['poll']) {
    if (poll.status === 'ACTIVE' && poll.end_time) await scheduleAutoClose(lifecycle, poll.poll_id, poll.end_time);
  }

  return {
    async create(caller: Principal | null, body: CreatePollBody) {
      if (!caller) throw authRequired();
      checkShape(body.poll_type, body.options.length, body.start_time, body.end_time);
      if (body.status === 'ACTIVE') checkEndInFuture(body.end_time);
      const options = body.options.map((o) => ({ text: o.text, image_url: o.image_url ?? null }));
      checkOptionImages(options, deps.imageHosts);
      await deps.creationLimit(caller.userId);
      if (body.visibility === 'ORGANIZATION' && caller.orgId === null) {
        throw validationError('ORGANIZATION polls need a token with an "org" claim', { field: 'visibility' });
      }
      const created = await db.transaction().execute(async (trx) => {
        const inserted = await insertPoll(
          trx,
          {
            creator_id: caller.userId,
            org_id: caller.orgId,
            question: body.question,
            poll_type: body.poll_type,
            status: body.status,
            is_anonymous: body.is_anonymous,
            allow_change_vote: body.allow_change_vote,
            visibility: body.visibility,
            access_key: body.visibility === 'PRIVATE' ? randomBytes(18).toString('base64url') : null,
            start_time: body.start_time,
            end_time: body.end_time,
            settings: normalizeSettings(body.poll_type, body.options.length, body.settings),
            tiebreak_seed: randomBytes(32).toString('hex'),
            partitions: deps.partitions,
          },
          options,
        );
        await scheduleCloseOf(inserted.poll);
        return inserted;
      });
      return toPollResponse(created, caller);
    },

    async get(pollId: number, caller: Principal | null, key: string | undefined) {
      const found = await findPoll(db, pollId);
      if (!found) throw pollNotFound();
      assertCanReadPoll(accessFacts(found), caller, key);
      return found;
    },

    /**
     * The origins that may frame a poll's embed: its `settings.embed_origins`, when the poll can be
     * shown there (not a draft; a PRIVATE poll only with its key). Null otherwise, so that the
     * answer says nothing about polls the asker could not read.
     */
    async embedOrigins(pollId: number, key: string | undefined): Promise<string[] | null> {
      const found = await findPoll(db, pollId);
      if (!found || found.poll.status === 'DRAFT') return null;
      try {
        assertCanReadPoll({ ...accessFacts(found), visibility: found.poll.visibility === 'ORGANIZATION' ? 'PUBLIC' : found.poll.visibility }, null, key);
      } catch {
        return null;
      }
      return found.poll.settings.embed_origins ?? [];
    },

    async list(caller: Principal | null, q: { status?: 'DRAFT' | 'ACTIVE' | 'CLOSED'; limit: number; cursor?: string; creator?: 'me' }) {
      if (q.creator === 'me' && !caller) throw authRequired();
      const rows = await listPolls(db, {
        creatorId: q.creator === 'me' ? caller!.userId : undefined,
        status: q.status,
        before: q.cursor ? Number(q.cursor) : undefined,
        limit: q.limit + 1,
      });
      const page = rows.slice(0, q.limit);
      return {
        items: (await withOptions(db, page)).map((p) => toPollResponse(p, caller)),
        next_cursor: rows.length > q.limit ? String(page[page.length - 1].poll_id) : null,
      };
    },

    async patch(pollId: number, caller: Principal | null, body: PatchPollBody) {
      const current = await loadManaged(pollId, caller);
      const { poll } = current;
      if (poll.status === 'CLOSED') throw pollNotActive('A closed poll cannot be edited');
      const updated = await db.transaction().execute(async (trx) => {
        const locked = await findPoll(trx, pollId, { forUpdate: true });
        if (!locked || locked.poll.status !== poll.status) throw conflict('The poll changed meanwhile; try again');
        if (poll.status === 'ACTIVE') {
          const { end_time, settings, ...rest } = body;
          // Embedding sites come and go while a poll runs: they change who may frame it, not the ballot.
          const otherSetting = Object.keys(settings ?? {}).find((k) => k !== 'show_results_before_close' && k !== 'embed_origins');
          const other = Object.keys(rest)[0] ?? (otherSetting && `settings.${otherSetting}`);
          if (other) throw validationError(`${other} cannot be changed once the poll is ACTIVE`, { field: other });
          if (end_time !== undefined) {
            checkEndInFuture(end_time);
            checkShape(locked.poll.poll_type, locked.options.length, locked.poll.start_time, end_time);
          }
          const nextSettings =
            settings?.show_results_before_close === undefined && settings?.embed_origins === undefined
              ? undefined
              : {
                  ...locked.poll.settings,
                  ...(settings.show_results_before_close !== undefined && { show_results_before_close: settings.show_results_before_close }),
                  ...(settings.embed_origins !== undefined && { embed_origins: embedOriginsOf(settings.embed_origins) }),
                };
          const row = await updatePoll(trx, pollId, { end_time, settings: nextSettings });
          if (end_time !== undefined) await scheduleCloseOf(row);
          return { poll: row, options: locked.options };
        }
        // From the row as locked: a concurrent edit committed since the first read must not be undone.
        const pollType = body.poll_type ?? locked.poll.poll_type;
        const options = body.options ? body.options.map((o) => ({ text: o.text, image_url: o.image_url ?? null })) : null;
        if (options) checkOptionImages(options, deps.imageHosts);
        const optionCount = options?.length ?? locked.options.length;
        const start = body.start_time === undefined ? locked.poll.start_time : body.start_time;
        const end = body.end_time === undefined ? locked.poll.end_time : body.end_time;
        checkShape(pollType, optionCount, start, end);
        const visibility = body.visibility ?? locked.poll.visibility;
        if (visibility === 'ORGANIZATION' && locked.poll.org_id === null) {
          throw validationError('ORGANIZATION polls need a creator with an "org" claim', { field: 'visibility' });
        }
        // Settings given in a patch replace the stored ones field by field; changed types re-derive defaults.
        const base = body.poll_type && body.poll_type !== locked.poll.poll_type ? {} : locked.poll.settings;
        const settings = normalizeSettings(pollType, optionCount, { ...base, ...(body.settings ?? {}) });
        const row = await updatePoll(trx, pollId, {
          question: body.question,
          poll_type: body.poll_type,
          is_anonymous: body.is_anonymous,
          allow_change_vote: body.allow_change_vote,
          visibility: body.visibility,
          access_key: visibility === 'PRIVATE' ? (locked.poll.access_key ?? randomBytes(18).toString('base64url')) : null,
          start_time: body.start_time,
          end_time: body.end_time,
          settings,
        });
        return { poll: row, options: options ? await replaceOptions(trx, pollId, options) : locked.options };
      });
      await announcePollChange(deps, pollId).catch(() => {});
      return toPollResponse(updated, caller);
    },

    async publish(pollId: number, caller: Principal | null) {
      const current = await loadManaged(pollId, caller);
      if (current.poll.status !== 'DRAFT') throw pollNotDraft();
      checkEndInFuture(current.poll.end_time);
      const row = await db.transaction().execute(async (trx) => {
        const published = await transitionPoll(trx, pollId, ['DRAFT'], 'ACTIVE');
        if (published) await scheduleCloseOf(published);
        return published;
      });
      if (!row) throw pollNotDraft();
      await announcePollChange(deps, pollId).catch(() => {});
      return toPollResponse({ poll: row, options: current.options }, caller);
    },

    async close(pollId: number, caller: Principal | null) {
      const current = await loadManaged(pollId, caller, true);
      if (current.poll.status === 'CLOSED') return toPollResponse(current, caller);
      const row = await closePoll(deps, current.poll);
      const after = row ? { poll: row, options: current.options } : ((await findPoll(db, pollId)) ?? current);
      return toPollResponse(after, caller);
    },
  };
}
export type PollService = ReturnType<typeof createPollService>;
