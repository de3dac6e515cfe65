// GET /polls/:id: the poll, a vote form fitting its type, results that explain themselves (live,
// or polled when the gateway is away), sharing, and for its creator: publish, close, extend.
import { $, api, confirmDialog, copyText, el, errorText, pollFromPath, setupSignIn, signedIn, toLocalInput, TYPE_LABELS, when } from './common.js';
import { ballotHint, buildChoices, castVote, followVote, reviewText, setFormEnabled, voteErrorText } from './ballot.js';
import { watchResults } from './live.js';
import { renderResults } from './results.js';

const { pollId, key, keyQuery } = pollFromPath();
const DETAILS_EVERY_MS = 10_000;

let poll = null;
let viewToken;
let readBallot = null;
let voted = false;
let lastState = null;
let details = null;
let hidden = false;
let stopWatching = () => {};
let stopFollowing = () => {};
let detailsAt = 0;
let detailsTimer = null;

const announce = (text) => ($('announce').textContent = text);

// ---------------------------------------------------------------- the poll

async function loadPoll() {
  stopWatching();
  const res = await api(`/api/v1/polls/${pollId}${keyQuery}`);
  if (res.status !== 200) {
    $('poll-status').textContent = errorText(res);
    $('poll').hidden = true;
    return;
  }
  poll = res.body;
  viewToken = poll.view_token;
  poll.options.sort((a, b) => a.display_order - b.display_order);
  document.title = poll.question;
  $('poll-status').textContent = new URLSearchParams(location.search).has('created')
    ? poll.status === 'DRAFT'
      ? 'Draft saved. Publish it when it is ready.'
      : 'Your poll is open. Share it below.'
    : '';
  $('question').textContent = poll.question;
  $('poll-meta').textContent = describe(poll);
  buildForm();
  showManage();
  showShare();
  $('poll').hidden = false;
  details = null;
  lastState = null;
  hidden = false;
  stopWatching = watchResults({ pollId, key: key ?? poll.access_key, onResults, onHidden, onStatus: (t) => ($('live-status').textContent = t) });
}

function describe(p) {
  const parts = [TYPE_LABELS[p.poll_type] ?? p.poll_type];
  if (p.status !== 'ACTIVE') parts.push(p.status === 'CLOSED' ? 'closed' : 'draft, not published yet');
  if (p.start_time && new Date(p.start_time) > new Date()) parts.push(`opens ${when(p.start_time)}`);
  if (p.end_time) parts.push(`${p.status === 'CLOSED' || new Date(p.end_time) < new Date() ? 'ended' : 'ends'} ${when(p.end_time)}`);
  if (p.settings.require_authentication) parts.push('sign-in required to vote');
  if (p.allow_change_vote) parts.push('you can change your vote');
  if (!p.settings.show_results_before_close) parts.push('results shown at the close');
  if (p.is_anonymous) parts.push('anonymous');
  return parts.join(' · ');
}

function buildForm() {
  // A closed poll is its results: no form to look at.
  $('vote-form').hidden = poll.status === 'CLOSED';
  $('choices-hint').textContent = ballotHint(poll);
  readBallot = buildChoices(poll, $('choices'), announce);
  $('vote-button').textContent = 'Vote';
  $('vote-status').textContent = '';
  setFormEnabled($('vote-form'), poll, poll.status === 'ACTIVE');
  if (poll.status !== 'ACTIVE') $('vote-status').textContent = poll.status === 'CLOSED' ? 'This poll is closed.' : 'This poll is not open for voting yet.';
}

// ---------------------------------------------------------------- managing (the creator)

const isCreator = () => signedIn()?.userId === poll.creator_id;

function showManage() {
  const mine = isCreator();
  $('manage').hidden = !mine;
  if (!mine) return;
  const state = { DRAFT: 'Draft: only you can see it. Publish it to open voting.', ACTIVE: 'Open for voting.', CLOSED: 'Closed: the results are final.' }[
    poll.status
  ];
  $('manage-state').textContent = state;
  $('publish').hidden = poll.status !== 'DRAFT';
  $('close').hidden = poll.status !== 'ACTIVE';
  $('extend-form').hidden = poll.status === 'CLOSED';
  $('extend-end').value = toLocalInput(poll.end_time);
  $('embed-form').hidden = poll.status === 'CLOSED';
  $('embed-origins').value = (poll.settings.embed_origins ?? []).join('\n');
  $('moderation-link').href = `/polls/${pollId}/moderation${keyQuery}`;
  $('analytics-link').href = `/polls/${pollId}/analytics${keyQuery}`;
}

async function manage(action, button) {
  button.disabled = true;
  const res = await action();
  button.disabled = false;
  if (res.status !== 200) {
    $('manage-status').textContent = errorText(res);
    return;
  }
  $('manage-status').textContent = '';
  await loadPoll();
}

$('publish').addEventListener('click', (e) => manage(() => api(`/api/v1/polls/${pollId}/publish`, { method: 'POST' }), e.currentTarget));
$('close').addEventListener('click', async (e) => {
  const button = e.currentTarget;
  const sure = await confirmDialog({
    title: 'Close this poll?',
    text: 'Voting stops for everyone and the results become final. This cannot be undone.',
    confirm: 'Close the poll',
  });
  if (sure) manage(() => api(`/api/v1/polls/${pollId}/close`, { method: 'POST' }), button);
});
$('extend-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const value = $('extend-end').value;
  manage(
    () => api(`/api/v1/polls/${pollId}`, { method: 'PATCH', body: { end_time: value ? new Date(value).toISOString() : null } }),
    e.submitter ?? $('extend-form').querySelector('button'),
  );
});

$('embed-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const origins = $('embed-origins')
    .value.split(/[\s,]+/)
    .map((o) => o.trim().replace(/\/$/, ''))
    .filter(Boolean);
  manage(
    () => api(`/api/v1/polls/${pollId}`, { method: 'PATCH', body: { settings: { embed_origins: origins } } }),
    e.submitter ?? $('embed-form').querySelector('button'),
  );
});

// ---------------------------------------------------------------- sharing

function showShare() {
  const shareKey = key ?? poll.access_key;
  const q = shareKey ? `?key=${encodeURIComponent(shareKey)}` : '';
  const link = `${location.origin}/polls/${pollId}${q}`;
  $('share').hidden = poll.status === 'DRAFT';
  $('share-link').value = link;
  $('qr').src = `/polls/${pollId}/qr.svg${q}`;
  const embedUrl = `${location.origin}/embed/polls/${pollId}${q}`;
  const title = poll.question.replace(/[&"<>]/g, (c) => ({ '&': '&amp;', '"': '&quot;', '<': '&lt;', '>': '&gt;' })[c]);
  $('embed-code').value =
    `<iframe src="${embedUrl}" title="Poll: ${title}" width="100%" height="520" style="border:0;max-width:640px" loading="lazy"></iframe>`;
  const origins = poll.settings.embed_origins ?? [];
  $('embed-note').textContent = origins.length
    ? `Browsers show the embed only on ${origins.join(', ')} (the poll's embed origins).`
    : 'No site may embed this poll yet: its creator lists the allowed sites under \u201cYour poll\u201d.';
}

$('copy-link').addEventListener('click', (e) => copyText($('share-link').value, e.currentTarget));
$('copy-embed').addEventListener('click', (e) => copyText($('embed-code').value, e.currentTarget));
for (const id of ['share-link', 'embed-code']) $(id).addEventListener('focus', (e) => e.currentTarget.select());

// ---------------------------------------------------------------- voting

async function submitVote(e) {
  e.preventDefault();
  if (voted && !poll.allow_change_vote) return;
  const status = $('vote-status');
  const ballot = readBallot();
  if (!ballot) {
    status.textContent = poll.poll_type === 'RATING' ? 'Rate at least one option.' : 'Choose at least one option.';
    return;
  }
  $('vote-button').disabled = true;
  const { res, fingerprint } = await castVote({ pollId, keyQuery, ballot, viewToken, say: (t) => (status.textContent = t) });
  $('vote-button').disabled = false;
  if (res.status === 202) {
    voted = true;
    const changed = res.body.changed;
    status.textContent = res.body.under_review ? reviewText('UNDER_REVIEW') : changed ? 'Your vote was changed.' : 'Thank you, your vote was received.';
    if (poll.allow_change_vote) $('vote-button').textContent = 'Change my vote';
    else setFormEnabled($('vote-form'), poll, false);
    stopFollowing();
    stopFollowing = followVote({
      pollId,
      key,
      fingerprint,
      onStatus: (s) => {
        const text = reviewText(s, changed);
        if (text) status.textContent = text;
      },
    });
  } else {
    status.textContent = voteErrorText(res);
    if (res.body?.error?.code === 'ALREADY_VOTED') setFormEnabled($('vote-form'), poll, false);
  }
}

// ---------------------------------------------------------------- results

const needsDetails = () => poll.poll_type === 'RANKED' || poll.poll_type === 'RATING';

/** GET /results for what live messages leave out (rounds, histograms): at once when final, else at most every 10 s. */
function refreshDetails(now) {
  if (!needsDetails()) return;
  const wait = now ? 0 : Math.max(0, detailsAt + DETAILS_EVERY_MS - Date.now());
  if (detailsTimer && !now) return;
  clearTimeout(detailsTimer);
  detailsTimer = setTimeout(async () => {
    detailsTimer = null;
    detailsAt = Date.now();
    const res = await api(`/api/v1/polls/${pollId}/results${key ? `?key=${encodeURIComponent(key)}` : ''}`);
    if (res.status !== 200) return;
    details = res.body;
    if (lastState) render();
  }, wait);
}

function render() {
  renderResults($('results'), poll, lastState, details);
  $('final-badge').hidden = !lastState.final;
}

function onResults(m) {
  const wasFinal = lastState?.final;
  lastState = m;
  hidden = false;
  render();
  refreshDetails(m.final && !wasFinal);
  if (m.final && !wasFinal) {
    poll.status = 'CLOSED';
    $('poll-status').textContent = '';
    setFormEnabled($('vote-form'), poll, false);
    $('vote-form').hidden = !voted;
    if (voted) $('vote-status').textContent += ' The poll is now closed.';
    $('poll-meta').textContent = describe(poll);
    if (isCreator()) showManage();
    announce('The poll closed. The final results are shown.');
  }
}

function onHidden() {
  if (hidden) return;
  hidden = true;
  $('results').replaceChildren(
    el('p', { className: 'hidden-results' }, 'Results are hidden until the poll closes. They will appear here by themselves at the close: no need to reload.'),
  );
}

$('vote-form').addEventListener('submit', submitVote);
setupSignIn(() => {
  voted = false;
  loadPoll();
});
loadPoll();
