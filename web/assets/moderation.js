// GET /polls/:id/moderation: a poll's held votes for its creator (or an admin): each ballot's
// choice, why it was held, its network and time; approve or reject one, some, or a whole network
// after a confirmation. The counts above move live as decisions land.
import { $, api, confirmDialog, el, errorText, pollFromPath, setupSignIn, when } from './common.js';
import { watchResults } from './live.js';

const { pollId, key, keyQuery } = pollFromPath();
const REASONS = { IP_PREFIX_VELOCITY: 'burst from its network', TOO_FAST: 'answered faster than a person reads' };
const amp = keyQuery ? `&key=${encodeURIComponent(key)}` : '';

let poll = null;
let cursor = null;
let reloadTimer = null;
let lastPending = null;
const selected = new Set();

const say = (text) => ($('mod-action').textContent = text);
const textOf = (id) => poll.options.find((o) => String(o.option_id) === String(id))?.text ?? `#${id}`;

function choiceText(v) {
  if (v.ranking) return v.ranking.map((id, i) => `${i + 1}. ${textOf(id)}`).join(', ');
  if (v.ratings)
    return Object.entries(v.ratings)
      .map(([id, r]) => `${textOf(id)}: ${r}`)
      .join(', ');
  return v.options.map(textOf).join(', ');
}

async function decide(body, what) {
  say(`${body.decision === 'VALID' ? 'Approving' : 'Rejecting'} ${what}…`);
  let reviewed = 0;
  let changed = 0;
  for (;;) {
    const res = await api(`/api/v1/polls/${pollId}/flagged-votes/review${keyQuery}`, { method: 'POST', body });
    if (res.status !== 200) {
      say(errorText(res));
      break;
    }
    reviewed += res.body.reviewed;
    changed += res.body.changed;
    // A network bigger than one batch: the server says how many are left.
    if (!body.prefix || res.body.remaining === 0 || res.body.reviewed === 0) {
      say(
        `${body.decision === 'VALID' ? 'Approved' : 'Rejected'} ${reviewed} ${reviewed === 1 ? 'vote' : 'votes'}${changed !== reviewed ? ` (${reviewed - changed} already decided)` : ''}.`,
      );
      break;
    }
  }
  selected.clear();
  await loadQueue(true);
}

function prefixRow(p) {
  const label = p.prefix ?? 'unknown address';
  const approve = el('button', { type: 'button', className: 'small' }, 'Approve all');
  const reject = el('button', { type: 'button', className: 'small secondary' }, 'Reject all');
  approve.setAttribute('aria-label', `Approve all ${p.count} held votes from ${label}`);
  reject.setAttribute('aria-label', `Reject all ${p.count} held votes from ${label}`);
  const ask = async (decision) => {
    const verb = decision === 'VALID' ? 'Approve' : 'Reject';
    const ok = await confirmDialog({
      title: `${verb} ${p.count} ${p.count === 1 ? 'vote' : 'votes'} from ${label}?`,
      text:
        decision === 'VALID'
          ? 'Every vote held from this network is added to the counts at once.'
          : 'Every vote held from this network stays out of the counts.',
      confirm: `${verb} ${p.count}`,
    });
    if (ok) decide({ decision, prefix: p.prefix }, `${p.count} votes from ${label}`);
  };
  approve.addEventListener('click', () => ask('VALID'));
  reject.addEventListener('click', () => ask('REJECTED'));
  return el(
    'tr',
    {},
    el('td', {}, el('code', {}, label)),
    el('td', {}, String(p.count)),
    el('td', {}, el('div', { className: 'actions' }, p.prefix ? [approve, reject] : 'decide one by one')),
  );
}

function voteRow(v) {
  const box = el('input', { type: 'checkbox', checked: selected.has(v.vote_id) });
  box.setAttribute('aria-label', `Select the vote of ${when(v.created_at)}`);
  box.addEventListener('change', () => {
    if (box.checked) selected.add(v.vote_id);
    else selected.delete(v.vote_id);
    updateBulk();
  });
  const approve = el('button', { type: 'button', className: 'small' }, 'Approve');
  const reject = el('button', { type: 'button', className: 'small secondary' }, 'Reject');
  approve.addEventListener('click', () => decide({ decision: 'VALID', vote_ids: [v.vote_id] }, 'the vote'));
  reject.addEventListener('click', () => decide({ decision: 'REJECTED', vote_ids: [v.vote_id] }, 'the vote'));
  const reasons = v.reasons.map((r) => REASONS[r] ?? r).join('; ');
  // data-label names each cell where a phone shows the row as a card.
  const cell = (label, ...content) => {
    const td = el('td', {}, ...content);
    td.dataset.label = label;
    return td;
  };
  const tr = el(
    'tr',
    {},
    el('td', { className: 'pick' }, box),
    cell('Time', el('time', { dateTime: v.created_at }, new Date(v.created_at).toLocaleString([], { dateStyle: 'short', timeStyle: 'medium' }))),
    cell('Choice', choiceText(v)),
    cell('Why held', reasons, v.user_agent ? el('span', { className: 'meta ua' }, v.user_agent) : ''),
    cell('Network', el('code', {}, v.ip_prefix ?? '–')),
    el('td', {}, el('div', { className: 'actions' }, approve, reject)),
  );
  tr.dataset.voteId = v.vote_id;
  return tr;
}

function updateBulk() {
  $('approve-selected').disabled = selected.size === 0;
  $('reject-selected').disabled = selected.size === 0;
  $('approve-selected').textContent = selected.size ? `Approve ${selected.size} selected` : 'Approve selected';
  $('reject-selected').textContent = selected.size ? `Reject ${selected.size} selected` : 'Reject selected';
}

/** Loads (a page of) the queue; returns the error sentence when it could not. */
async function loadQueue(fresh) {
  if (fresh) cursor = null;
  const res = await api(`/api/v1/polls/${pollId}/flagged-votes?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}${amp}`);
  if (res.status !== 200) {
    say(errorText(res));
    return errorText(res);
  }
  const q = res.body;
  $('mod-pending').textContent = String(q.pending_review);
  $('prefixes')
    .querySelector('tbody')
    .replaceChildren(...q.prefixes.map(prefixRow));
  $('prefixes').hidden = q.prefixes.length === 0;
  $('prefixes-empty').hidden = q.prefixes.length > 0;
  const body = $('votes').querySelector('tbody');
  if (fresh) body.replaceChildren();
  body.append(...q.items.map(voteRow));
  $('votes').hidden = body.children.length === 0;
  cursor = q.next_cursor;
  $('more').hidden = !cursor;
  for (const id of [...selected]) if (!body.querySelector(`tr[data-vote-id="${id}"]`)) selected.delete(id);
  updateBulk();
  return null;
}

/** New flags (a burst being noticed) show up without a reload, at most every 2 s. */
function queueChanged() {
  if (reloadTimer) return;
  reloadTimer = setTimeout(() => {
    reloadTimer = null;
    loadQueue(true);
  }, 2000);
}

async function load() {
  const res = await api(`/api/v1/polls/${pollId}${keyQuery}`);
  if (res.status !== 200) {
    $('mod-status').textContent = errorText(res);
    return;
  }
  poll = res.body;
  document.title = `Review: ${poll.question}`;
  $('mod-question').textContent = poll.question;
  $('back-link').href = `/polls/${pollId}${keyQuery}`;
  const failed = await loadQueue(true);
  if (failed) {
    $('mod-status').textContent = failed;
    return;
  }
  $('mod-status').textContent = '';
  $('moderation').hidden = false;
  watchResults({
    pollId,
    key: key ?? poll.access_key,
    onResults: (m) => {
      $('mod-total').textContent = String(m.total_votes);
      if (lastPending !== null && m.pending_review !== lastPending) queueChanged();
      lastPending = m.pending_review;
      $('mod-pending').textContent = String(m.pending_review);
    },
    onHidden: () => {},
    onStatus: () => {},
  });
}

$('select-all').addEventListener('change', (e) => {
  for (const box of $('votes').querySelectorAll('tbody input[type="checkbox"]')) {
    box.checked = e.currentTarget.checked;
    box.dispatchEvent(new Event('change'));
  }
});
$('approve-selected').addEventListener('click', () => decide({ decision: 'VALID', vote_ids: [...selected] }, `${selected.size} votes`));
$('reject-selected').addEventListener('click', () => decide({ decision: 'REJECTED', vote_ids: [...selected] }, `${selected.size} votes`));
$('more').addEventListener('click', () => loadQueue(false));
setupSignIn();
load();
