// GET /embed/polls/:id: the compact vote and live results for an iframe on another site (its
// frame-ancestors are the poll's settings.embed_origins). Anonymous: a third-party frame has no
// sign-in, and a poll that needs one links to the full page instead.
import { $, api, el, errorText, pollFromPath } from './common.js';
import { ballotHint, buildChoices, castVote, followVote, reviewText, setFormEnabled, voteErrorText } from './ballot.js';
import { watchResults } from './live.js';
import { renderResults } from './results.js';

const { pollId, key, keyQuery } = pollFromPath();
let poll = null;
let readBallot = null;
let lastState = null;
let details = null;
let detailsTimer = null;

async function load() {
  const res = await api(`/api/v1/polls/${pollId}${keyQuery}`);
  if (res.status !== 200) {
    $('poll-status').textContent = errorText(res);
    return;
  }
  poll = res.body;
  poll.options.sort((a, b) => a.display_order - b.display_order);
  document.title = poll.question;
  $('question').textContent = poll.question;
  $('full-link').href = `${location.origin}/polls/${pollId}${keyQuery}`;
  $('choices-hint').textContent = ballotHint(poll);
  readBallot = buildChoices(poll, $('choices'), (t) => ($('announce').textContent = t));
  const open = poll.status === 'ACTIVE';
  setFormEnabled($('vote-form'), poll, open && !poll.settings.require_authentication);
  if (!open) $('vote-status').textContent = poll.status === 'CLOSED' ? 'This poll is closed.' : 'This poll is not open yet.';
  else if (poll.settings.require_authentication) $('vote-status').textContent = 'This poll needs signing in: vote on the full poll page.';
  $('poll-status').textContent = '';
  $('poll').hidden = false;
  watchResults({ pollId, key, onResults, onHidden, onStatus: (t) => ($('live-status').textContent = t) });
}

function refreshDetails(now) {
  if (poll.poll_type !== 'RANKED' && poll.poll_type !== 'RATING') return;
  if (detailsTimer && !now) return;
  clearTimeout(detailsTimer);
  detailsTimer = setTimeout(
    async () => {
      detailsTimer = null;
      const res = await api(`/api/v1/polls/${pollId}/results${keyQuery}`);
      if (res.status !== 200) return;
      details = res.body;
      if (lastState) renderResults($('results'), poll, lastState, details);
    },
    now ? 0 : 10_000,
  );
}

function onResults(m) {
  const wasFinal = lastState?.final;
  lastState = m;
  renderResults($('results'), poll, m, details);
  $('final-badge').hidden = !m.final;
  refreshDetails(m.final && !wasFinal);
  if (m.final) {
    setFormEnabled($('vote-form'), poll, false);
    $('vote-status').textContent ||= 'This poll is closed.';
  }
}

function onHidden() {
  $('results').replaceChildren(el('p', { className: 'hidden-results' }, 'Results are hidden until the poll closes; they appear here then.'));
}

$('vote-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const status = $('vote-status');
  const ballot = readBallot();
  if (!ballot) {
    status.textContent = poll.poll_type === 'RATING' ? 'Rate at least one option.' : 'Choose at least one option.';
    return;
  }
  $('vote-button').disabled = true;
  const { res, fingerprint } = await castVote({ pollId, keyQuery, ballot, viewToken: poll.view_token, say: (t) => (status.textContent = t) });
  $('vote-button').disabled = false;
  if (res.status === 202) {
    status.textContent = res.body.under_review ? reviewText('UNDER_REVIEW') : 'Thank you, your vote was received.';
    if (!poll.allow_change_vote) setFormEnabled($('vote-form'), poll, false);
    followVote({ pollId, key, fingerprint, onStatus: (s) => (status.textContent = reviewText(s, res.body.changed) ?? status.textContent) });
  } else {
    status.textContent = voteErrorText(res);
    if (res.body?.error?.code === 'ALREADY_VOTED') setFormEnabled($('vote-form'), poll, false);
  }
});
load();
