import type { Kysely } from 'kysely';
import { WebSocket } from 'ws';
import { loadResults, type ResultsState } from '../db/results.js';
import type { DB } from '../db/schema.js';
import { toPollUpdate } from '../shared/poll-updates.js';
import type { RedisClient } from '../shared/redis.js';
import type { RedisKeys } from '../shared/redis-keys.js';

/** The contract: at most one message per this many ms per connection, and one within it of the last change. */
export const PUSH_INTERVAL_MS = 500;
// A client with more than this queued is skipped (it gets a later state once it drains), so a
// stuck peer holds at most this much of our memory...
const SLOW_BUFFERED_BYTES = 64 * 1024;
// ...and is dropped after this many pushes skipped in a row (about five seconds of changes).
const SLOW_MAX_SKIPS = 10;
// A pass over a crowd yields to the event loop after this many sends (pub/sub, new connections).
const SENDS_PER_PASS = 2000;
// A feed outlives its last watcher this long, still subscribed and current: a client that
// reconnects (or opens and closes sockets in a loop) costs no reload of the poll's results.
export const FEED_LINGER_MS = 30_000;

/** One connection watching one poll, as far as delivery cares. */
export interface Watcher {
  ws: WebSocket;
  /** The bytes it was last sent, compared by identity with the feed's current bytes. */
  sent: Buffer | null;
  sentAt: number;
  skips: number;
  /** Results hidden until close: this watcher gets only the final state (the reveal), nothing before. */
  withheld?: boolean;
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
  timer: NodeJS.Timeout | null;
  /** Set while the feed has no watchers: ends it once FEED_LINGER_MS have passed. */
  linger: NodeJS.Timeout | null;
}

export interface PollFeedsDeps {
  db: Kysely<DB>;
  subscriber: RedisClient;
  keys: RedisKeys;
  onSent: (messages: number) => void;
  onSlowConsumerDropped: () => void;
  /** How long a feed outlives its last watcher (FEED_LINGER_MS unless told). */
  lingerMs?: number;
}

/**
 * The latest results of every poll some client watches, fed by Redis pub/sub and pushed to
 * the watchers coalesced: a burst of updates becomes at most two messages a second per
 * watcher, each the latest state, serialised once and the same bytes for every watcher.
 *
 * A feed keeps its watchers in the order they were last sent to (a Set, re-inserted on each
 * send), so a pass sends to the front of the line until it meets one not yet due and then
 * sleeps until that one is. Each connection gets its 500 ms measured from its own send, even
 * when fanning out to thousands takes longer than that, and the sends spread over time
 * instead of blocking the event loop for a whole crowd at once.
 */
export function createPollFeeds({ db, subscriber, keys, onSent, onSlowConsumerDropped, lingerMs = FEED_LINGER_MS }: PollFeedsDeps) {
  const feeds = new Map<number, Feed>();
  const byChannel = new Map<string, Feed>();

  subscriber.on('smessage', (channel: string, message: string) => {
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
    // A pending timer already wakes up for the next watcher due, which then gets this state.
    if (!feed.timer) flush(feed);
  }

  function flush(feed: Feed): void {
    feed.timer = null;
    if (feed.json === null) return;
    feed.bytes ??= Buffer.from(feed.json);
    let sent = 0;
    for (const w of feed.watchers) {
      if (w.sent === feed.bytes || (w.withheld && !feed.final)) continue;
      const now = Date.now();
      if (now - w.sentAt < PUSH_INTERVAL_MS) {
        // Everyone behind this one was sent to later still: sleep until this one is due.
        feed.timer = setTimeout(flush, w.sentAt + PUSH_INTERVAL_MS - now, feed);
        break;
      }
      if (sent === SENDS_PER_PASS) {
        feed.timer = setTimeout(flush, 0, feed);
        break;
      }
      if (deliver(feed, w, now)) sent++;
    }
    if (sent) onSent(sent);
  }

  /** Sends the current state to a watcher now (or skips a slow one) and moves it to the back of the line. */
  function deliver(feed: Feed, w: Watcher, now: number): boolean {
    if (feed.json === null || w.ws.readyState !== WebSocket.OPEN) return false;
    feed.bytes ??= Buffer.from(feed.json);
    feed.watchers.delete(w);
    feed.watchers.add(w);
    w.sentAt = now;
    if (w.ws.bufferedAmount > SLOW_BUFFERED_BYTES) {
      // Not sent: it is due again in 500 ms, with whatever is latest then.
      if (++w.skips >= SLOW_MAX_SKIPS) {
        w.ws.terminate();
        onSlowConsumerDropped();
      }
      return false;
    }
    w.skips = 0;
    w.sent = feed.bytes;
    w.ws.send(feed.bytes, { binary: false });
    return true;
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
      timer: null,
      linger: null,
    };
    feeds.set(pollId, feed);
    byChannel.set(channel, feed);
    // Subscribe before reading, so no change can fall between the read and the subscription.
    feed.loaded = subscriber
      .ssubscribe(channel)
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
    if (feed.linger) clearTimeout(feed.linger);
    feed.timer = null;
    feed.linger = null;
    void subscriber.sunsubscribe(feed.channel).catch(() => {});
  }

  return {
    /** Adds a watcher and sends it the current results (loaded once per poll, shared by concurrent first watchers). */
    async watch(pollId: number, w: Watcher): Promise<void> {
      const feed = feeds.get(pollId) ?? open(pollId);
      if (feed.linger) clearTimeout(feed.linger);
      feed.linger = null;
      feed.watchers.add(w);
      await feed.loaded.catch((err) => {
        if (feed.json === null) throw err;
      });
      if (feed.watchers.has(w) && w.sent === null && !(w.withheld && !feed.final) && deliver(feed, w, Date.now())) onSent(1);
    },

    /** Sends a watcher the current state now (its results were just revealed to it). */
    deliverNow(pollId: number, w: Watcher): void {
      const feed = feeds.get(pollId);
      if (feed?.watchers.has(w) && deliver(feed, w, Date.now())) onSent(1);
    },

    /** Removes a watcher; the poll's subscription ends FEED_LINGER_MS after the last one left, unless another came. */
    unwatch(pollId: number, w: Watcher): void {
      const feed = feeds.get(pollId);
      if (!feed?.watchers.delete(w)) return;
      if (feed.watchers.size > 0 || feed.linger) return;
      feed.linger = setTimeout(() => {
        feed.linger = null;
        if (feed.watchers.size === 0) release(feed);
      }, lingerMs);
      feed.linger.unref();
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
      // One channel per command: on a cluster, each poll's channel may live on another node.
      await Promise.all(watched.map((f) => subscriber.ssubscribe(f.channel)));
      const states = await loadResults(
        db,
        watched.map((f) => f.pollId),
      );
      for (const [pollId, state] of states) {
        const feed = feeds.get(pollId);
        if (feed) acceptStored(feed, state);
      }
    },

    /** The polls that have watchers. */
    pollIds(): number[] {
      return [...feeds.keys()];
    },

    /** How many polls have watchers. */
    size(): number {
      let n = 0;
      for (const feed of feeds.values()) if (feed.watchers.size > 0) n++;
      return n;
    },

    /** Stops every timer (the connections are closed by the gateway). */
    close(): void {
      for (const feed of feeds.values()) {
        if (feed.timer) clearTimeout(feed.timer);
        if (feed.linger) clearTimeout(feed.linger);
      }
      feeds.clear();
      byChannel.clear();
    },
  };
}
