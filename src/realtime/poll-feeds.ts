import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { WebSocket } from 'ws';
import { loadResults, type ResultsState } from '../db/results.js';
import type { DB } from '../db/schema.js';
import { toPollUpdate } from '../shared/poll-updates.js';
import type { RedisKeys } from '../shared/redis-keys.js';

/** The contract: at most one message per this many ms per connection, and one within it of the last change. */
export const PUSH_INTERVAL_MS = 500;
// A client with more than this queued is skipped (it gets a later state once it drains), so a
// stuck peer holds at most this much of our memory...
const SLOW_BUFFERED_BYTES = 64 * 1024;
// ...and is dropped after this many pushes skipped in a row (about five seconds of changes).
const SLOW_MAX_SKIPS = 10;

/** One connection watching one poll, as far as delivery cares. */
export interface Watcher {
  ws: WebSocket;
  /** The bytes it was last sent, compared by identity with the feed's current bytes. */
  sent: Buffer | null;
  sentAt: number;
  skips: number;
}

interface Feed {
  pollId: number;
  channel: string;
  watchers: Set<Watcher>;
  seq: number;
  final: boolean;
  /** The latest accepted message, as published. */
  json: string | null;
  /** `json` as bytes, built at the first push after it changed: one serialisation for every watcher. */
  bytes: Buffer | null;
  loaded: Promise<void>;
  flushedAt: number;
  timer: NodeJS.Timeout | null;
}

export interface PollFeedsDeps {
  db: Kysely<DB>;
  subscriber: Redis;
  keys: RedisKeys;
  onSent: (messages: number) => void;
  onSlowConsumerDropped: () => void;
}

/**
 * The latest results of every poll some client watches, fed by Redis pub/sub and pushed to
 * the watchers coalesced: a burst of updates becomes at most two messages a second.
 */
export function createPollFeeds({ db, subscriber, keys, onSent, onSlowConsumerDropped }: PollFeedsDeps) {
  const feeds = new Map<number, Feed>();
  const byChannel = new Map<string, Feed>();

  subscriber.on('message', (channel: string, message: string) => {
    const feed = byChannel.get(channel);
    if (!feed) return;
    let m: { seq?: unknown; final?: unknown };
    try {
      m = JSON.parse(message);
    } catch {
      return;
    }
    if (typeof m.seq === 'number') accept(feed, m.seq, m.final === true, message);
  });

  /** Pub/sub may deliver out of order: only a newer state, or the first final one, replaces what we hold. */
  function accept(feed: Feed, seq: number, final: boolean, json: string): void {
    if (feed.json !== null && !(seq > feed.seq || (final && !feed.final))) return;
    feed.seq = seq;
    feed.final = final;
    feed.json = json;
    feed.bytes = null;
    schedule(feed);
  }

  function acceptStored(feed: Feed, state: ResultsState): void {
    const update = toPollUpdate(state);
    accept(feed, update.seq, update.final, JSON.stringify(update));
  }

  function schedule(feed: Feed): void {
    if (feed.timer) return;
    const wait = feed.flushedAt + PUSH_INTERVAL_MS - Date.now();
    if (wait <= 0) flush(feed);
    else feed.timer = setTimeout(flush, wait, feed);
  }

  function flush(feed: Feed): void {
    feed.timer = null;
    if (feed.json === null) return;
    const now = Date.now();
    feed.flushedAt = now;
    let next = Infinity;
    let sent = 0;
    for (const w of feed.watchers) {
      const due = deliver(feed, w, now);
      if (due === 0) sent++;
      else if (due > 0 && due < next) next = due;
    }
    if (sent) onSent(sent);
    const took = Date.now() - now; if (took > 50) console.error('DBG flush', feed.watchers.size, 'sent', sent, 'took', took);
    // Watchers held back by their own rate limit or a full buffer get the state they missed later.
    if (next !== Infinity) feed.timer = setTimeout(flush, next - now, feed);
  }

  /** Sends the current state to one watcher: 0 when sent, the time to retry, or -1 when nothing is due. */
  function deliver(feed: Feed, w: Watcher, now: number): number {
    if (feed.json === null || w.ws.readyState !== WebSocket.OPEN) return -1;
    feed.bytes ??= Buffer.from(feed.json);
    if (w.sent === feed.bytes) return -1;
    if (now - w.sentAt < PUSH_INTERVAL_MS) return w.sentAt + PUSH_INTERVAL_MS;
    if (w.ws.bufferedAmount > SLOW_BUFFERED_BYTES) {
      if (++w.skips < SLOW_MAX_SKIPS) return now + PUSH_INTERVAL_MS;
      w.ws.terminate();
      onSlowConsumerDropped();
      return -1;
    }
    w.skips = 0;
    w.sent = feed.bytes;
    w.sentAt = now;
    w.ws.send(feed.bytes, { binary: false });
    return 0;
  }

  function open(pollId: number): Feed {
    const channel = keys.pollUpdates(pollId);
    const feed: Feed = {
      pollId,
      channel,
      watchers: new Set(),
      seq: -1,
      final: false,
      json: null,
      bytes: null,
      loaded: Promise.resolve(),
      flushedAt: 0,
      timer: null,
    };
    feeds.set(pollId, feed);
    byChannel.set(channel, feed);
    // Subscribe before reading, so no change can fall between the read and the subscription.
    feed.loaded = subscriber
      .subscribe(channel)
      .then(() => loadResults(db, [pollId]))
      .then((states) => {
        const state = states.get(pollId);
        if (state) acceptStored(feed, state);
        if (feed.json === null) throw new Error(`no results for poll ${pollId}`);
      });
    // A failed first load is not cached: the watchers are told, and the next one tries again.
    feed.loaded.catch(() => {
      if (feeds.get(pollId) === feed && feed.json === null) release(feed);
    });
    return feed;
  }

  function release(feed: Feed): void {
    if (feeds.get(feed.pollId) === feed) feeds.delete(feed.pollId);
    if (byChannel.get(feed.channel) === feed) byChannel.delete(feed.channel);
    if (feed.timer) clearTimeout(feed.timer);
    feed.timer = null;
    void subscriber.unsubscribe(feed.channel).catch(() => {});
  }

  return {
    /** Adds a watcher and sends it the current results (loaded once per poll, shared by concurrent first watchers). */
    async watch(pollId: number, w: Watcher): Promise<void> {
      const feed = feeds.get(pollId) ?? open(pollId);
      feed.watchers.add(w);
      await feed.loaded.catch((err) => {
        if (feed.json === null) throw err;
      });
      if (feed.watchers.has(w) && deliver(feed, w, Date.now()) === 0) onSent(1);
    },

    /** Removes a watcher; the last one out ends the poll's subscription. */
    unwatch(pollId: number, w: Watcher): void {
      const feed = feeds.get(pollId);
      if (!feed || !feed.watchers.delete(w)) return;
      if (feed.watchers.size === 0) release(feed);
    },

    /** The watchers of a poll (to re-check their access when the poll changes). */
    watchersOf(pollId: number): Iterable<Watcher> {
      return feeds.get(pollId)?.watchers ?? [];
    },

    /**
     * Re-reads every watched poll after a Redis reconnect: pub/sub lost whatever was published
     * while we were away, and clients must converge to the stored counts.
     */
    async resync(): Promise<void> {
      const watched = [...feeds.values()];
      if (watched.length === 0) return;
      await subscriber.subscribe(...watched.map((f) => f.channel));
      const states = await loadResults(db, watched.map((f) => f.pollId));
      for (const [pollId, state] of states) {
        const feed = feeds.get(pollId);
        if (feed) acceptStored(feed, state);
      }
    },

    /** How many polls have watchers. */
    size(): number {
      return feeds.size;
    },

    /** Stops every timer (the connections are closed by the gateway). */
    close(): void {
      for (const feed of feeds.values()) if (feed.timer) clearTimeout(feed.timer);
      feeds.clear();
      byChannel.clear();
    },
  };
}
export type PollFeeds = ReturnType<typeof createPollFeeds>;
