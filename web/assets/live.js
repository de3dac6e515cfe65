// Live results for a poll: the gateway's WebSocket (on this origin's /ws unless configured
// otherwise), falling back to GET /results every few seconds while the gateway cannot be reached.
import { api, errorText, meta, token } from './common.js';

const POLL_EVERY_MS = 5000;

/** The live-results shape of a GET /results body, so both sources render the same way. */
export function fromResults(body) {
  const counts = {};
  for (const o of body.options) counts[o.option_id] = o.vote_count;
  return {
    type: 'results',
    poll_id: body.poll_id,
    status: body.status,
    total_votes: body.total_votes,
    pending_review: body.pending_review,
    counts,
    final: body.status === 'CLOSED',
    updated_at: body.updated_at,
  };
}

function liveUrl(pollId, key) {
  const configured = meta('realtime-url');
  const url = new URL(configured || `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`);
  url.searchParams.set('poll_id', pollId);
  // Hidden results: keep the socket, and get the final results the moment the poll closes.
  url.searchParams.set('hidden', 'wait');
  if (key) url.searchParams.set('key', key);
  if (token()) url.searchParams.set('token', token());
  return url.href;
}

// Refusals say something that reconnecting will not change; anything else is worth another try.
const REFUSALS = {
  4401: () => 'Live results refused your sign-in (malformed, badly signed or expired). Sign in again.',
  4403: (reason) =>
    reason === 'RESULTS_HIDDEN'
      ? 'Results are hidden until the poll closes.'
      : reason === 'AUTH_REQUIRED'
        ? 'Sign in to see the results of this poll.'
        : 'You are not allowed to see the results of this poll.',
  4404: () => 'No such poll.',
};

/**
 * Watches a poll's results. `onResults(message)` gets every state (live or polled);
 * `onHidden()` says the results are hidden until close; `onStatus(text)` describes the
 * connection. Returns a function that stops watching.
 */
export function watchResults({ pollId, key, onResults, onHidden, onStatus }) {
  let socket = null;
  let retryTimer;
  let pollTimer;
  let attempt = 0;
  let stopped = false;
  let finalSeen = false;
  const keyQuery = key ? `?key=${encodeURIComponent(key)}` : '';

  const deliver = (m) => {
    if (m.final) finalSeen = true;
    onResults(m);
  };

  // While the socket is down: the same results over plain HTTP, every few seconds.
  async function pollOnce() {
    pollTimer = null;
    if (stopped || socket?.readyState === WebSocket.OPEN) return;
    const res = await api(`/api/v1/polls/${pollId}/results${keyQuery}`);
    if (stopped || socket?.readyState === WebSocket.OPEN) return;
    if (res.status === 200) deliver(fromResults(res.body));
    else if (res.body?.error?.code === 'RESULTS_HIDDEN') onHidden();
    else if (res.status !== 0 && res.status < 500) {
      onStatus(errorText(res));
      return;
    }
    if (finalSeen) return;
    pollTimer = setTimeout(pollOnce, POLL_EVERY_MS);
  }
  const startPolling = () => {
    if (!pollTimer && !stopped && !finalSeen) pollOnce();
  };

  function connect() {
    clearTimeout(retryTimer);
    if (stopped) return;
    try {
      socket = new WebSocket(liveUrl(pollId, key));
    } catch {
      onStatus('Live updates are not available here; refreshing every few seconds.');
      startPolling();
      return;
    }
    const opened = socket;
    socket.onopen = () => {
      clearTimeout(pollTimer);
      pollTimer = null;
    };
    socket.onmessage = (e) => {
      let m;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      if (String(m.poll_id) !== String(pollId)) return;
      attempt = 0;
      if (m.type === 'hidden') {
        onHidden();
        onStatus('Live: the results appear here the moment the poll closes.');
      } else if (m.type === 'results') {
        deliver(m);
        onStatus(m.final ? 'The poll is closed; these are the final results.' : 'Live');
      }
    };
    socket.onclose = (e) => {
      if (socket !== opened) return;
      socket = null;
      if (stopped) return;
      const refusal = REFUSALS[e.code];
      if (refusal) {
        onStatus(refusal(e.reason));
        if (e.reason === 'RESULTS_HIDDEN') onHidden();
        return;
      }
      if (finalSeen) return;
      // Exponential backoff with jitter, so a gateway restart is not met by every watcher at once.
      const delay = Math.min(30_000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt++;
      onStatus(`Live updates unavailable; refreshing every ${POLL_EVERY_MS / 1000} s and reconnecting…`);
      startPolling();
      retryTimer = setTimeout(connect, delay);
    };
  }

  connect();
  return () => {
    stopped = true;
    clearTimeout(retryTimer);
    clearTimeout(pollTimer);
    if (socket) {
      socket.onclose = null;
      socket.close(1000);
    }
  };
}
