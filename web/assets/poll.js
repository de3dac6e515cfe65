// GET /polls/:id: the poll, a vote form fitting its type, and live results from the gateway.
import { api, el, errorText, meta, setupSignIn, token, TYPE_LABELS } from './common.js';

const $ = (id) => document.getElementById(id);
const pollId = location.pathname.split('/')[2];
const key = new URLSearchParams(location.search).get('key');
const keyQuery = key ? `?key=${encodeURIComponent(key)}` : '';

let poll = null;
let viewToken;
let choices = null; // reads the form into a ballot; set by the form builder of the poll type
let voted = false;

// ---------------------------------------------------------------- the poll and its form

async function loadPoll() {
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
  $('poll-status').textContent = '';
  $('question').textContent = poll.question;
  $('poll-meta').textContent = describe(poll);
  buildForm();
  $('poll').hidden = false;
  connectLive();
}

function describe(p) {
  const parts = [TYPE_LABELS[p.poll_type] ?? p.poll_type];
  if (p.status !== 'ACTIVE') parts.push(p.status === 'CLOSED' ? 'closed' : 'not published yet');
  if (p.end_time) parts.push(`${p.status === 'CLOSED' ? 'ended' : 'ends'} ${new Date(p.end_time).toLocaleString()}`);
  if (p.settings.require_authentication) parts.push('sign-in required to vote');
  if (p.allow_change_vote) parts.push('you can change your vote');
  return parts.join(' · ');
}

/** An option's label: its text, and its image when that is an https URL (the CSP allows no other). */
function optionLabel(option) {
  const label = el('span', { className: 'option-text' }, option.text);
  if (!option.image_url) return label;
  let url;
  try {
    url = new URL(option.image_url);
  } catch {
    return label;
  }
  if (url.protocol !== 'https:') return label;
  return el('span', { className: 'option-label' }, el('img', { src: url.href, alt: '', loading: 'lazy', referrerPolicy: 'no-referrer' }), label);
}

function buildForm() {
  const box = $('choices');
  box.replaceChildren();
  const s = poll.settings;
  const builders = { SINGLE_CHOICE: singleChoice, MULTIPLE_CHOICE: multipleChoice, RANKED: ranked, RATING: rating };
  const hint = { SINGLE_CHOICE: 'Choose one', MULTIPLE_CHOICE: `Choose up to ${s.max_choices}`, RANKED: 'Your order, most preferred first (untick options you do not rank)', RATING: `Rate from ${s.rating_min} to ${s.rating_max} (leave out options you do not rate)` };
  $('choices-hint').textContent = hint[poll.poll_type];
  choices = builders[poll.poll_type](box);
  $('vote-button').textContent = 'Vote';
  $('vote-status').textContent = '';
  setFormEnabled(poll.status === 'ACTIVE');
  if (poll.status !== 'ACTIVE') $('vote-status').textContent = poll.status === 'CLOSED' ? 'This poll is closed.' : 'This poll is not open for voting yet.';
}

function singleChoice(box) {
  for (const o of poll.options) {
    box.append(el('label', { className: 'choice' }, el('input', { type: 'radio', name: 'choice', value: o.option_id }), optionLabel(o)));
  }
  return () => {
    const picked = box.querySelector('input:checked');
    return picked ? { options: [Number(picked.value)] } : null;
  };
}

function multipleChoice(box) {
  const max = poll.settings.max_choices;
  for (const o of poll.options) {
    box.append(el('label', { className: 'choice' }, el('input', { type: 'checkbox', name: 'choice', value: o.option_id }), optionLabel(o)));
  }
  const boxes = [...box.querySelectorAll('input')];
  // At the limit, the unticked boxes are disabled rather than letting the server refuse the vote.
  box.addEventListener('change', () => {
    const full = boxes.filter((b) => b.checked).length >= max;
    for (const b of boxes) b.disabled = full && !b.checked;
  });
  return () => {
    const picked = boxes.filter((b) => b.checked).map((b) => Number(b.value));
    return picked.length ? { options: picked } : null;
  };
}

function ranked(box) {
  const list = el('ol', { className: 'ranking' });
  for (const o of poll.options) {
    const include = el('input', { type: 'checkbox', checked: true, title: 'Rank this option' });
    const up = el('button', { type: 'button', className: 'move', title: 'Move up', ariaLabel: `Move ${o.text} up` }, '↑');
    const down = el('button', { type: 'button', className: 'move', title: 'Move down', ariaLabel: `Move ${o.text} down` }, '↓');
    const row = el('li', {}, include, optionLabel(o), up, down);
    row.dataset.optionId = o.option_id;
    up.addEventListener('click', () => row.previousElementSibling?.before(row));
    down.addEventListener('click', () => row.nextElementSibling?.after(row));
    list.append(row);
  }
  box.append(list);
  return () => {
    const order = [...list.children].filter((row) => row.querySelector('input').checked).map((row) => Number(row.dataset.optionId));
    return order.length ? { ranking: order } : null;
  };
}

function rating(box) {
  const { rating_min: min, rating_max: max } = poll.settings;
  const inputs = [];
  for (const o of poll.options) {
    let input;
    // A select for short scales; a long one (0-100, say) would make an unwieldy list.
    if (max - min <= 10) {
      input = el('select', {}, el('option', { value: '' }, '–'));
      for (let v = min; v <= max; v++) input.append(el('option', { value: String(v) }, String(v)));
    } else {
      input = el('input', { type: 'number', min, max, step: 1, placeholder: `${min}–${max}` });
    }
    input.dataset.optionId = o.option_id;
    inputs.push(input);
    box.append(el('label', { className: 'choice rating' }, optionLabel(o), input));
  }
  return () => {
    const ratings = {};
    for (const input of inputs) if (input.value !== '') ratings[input.dataset.optionId] = Number(input.value);
    return Object.keys(ratings).length ? { ratings } : null;
  };
}

function setFormEnabled(on) {
  for (const c of $('vote-form').querySelectorAll('input, select, button')) c.disabled = !on;
  if (on && poll.poll_type === 'MULTIPLE_CHOICE') $('choices').dispatchEvent(new Event('change'));
}

// ---------------------------------------------------------------- voting

/** A hash of stable browser traits: tells apart voters behind one address with the same browser. */
async function fingerprint() {
  if (!crypto.subtle) return undefined;
  const traits = [Intl.DateTimeFormat().resolvedOptions().timeZone, navigator.languages?.join(','), navigator.hardwareConcurrency, navigator.platform, screen.colorDepth, navigator.deviceMemory, navigator.maxTouchPoints];
  return hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(traits.join('|'))));
}

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

/**
 * Solves an ALTCHA challenge: finds the number with hash(salt + number) = challenge, and
 * returns the base64 JSON payload altcha-lib's verifySolution takes. Null when not found.
 */
async function solveAltcha(ch) {
  // crypto.subtle exists only in secure contexts (https, or http on localhost).
  if (!crypto.subtle) return null;
  const enc = new TextEncoder();
  const batch = 500; // digests in flight at once: much faster than one await per number
  for (let start = 0; start <= ch.maxnumber; start += batch) {
    const ns = [];
    for (let n = start; n < start + batch && n <= ch.maxnumber; n++) ns.push(n);
    const hashes = await Promise.all(ns.map((n) => crypto.subtle.digest(ch.algorithm, enc.encode(ch.salt + n))));
    const i = hashes.findIndex((h) => hex(h) === ch.challenge);
    if (i >= 0) {
      const payload = { algorithm: ch.algorithm, challenge: ch.challenge, number: ns[i], salt: ch.salt, signature: ch.signature };
      return btoa(JSON.stringify(payload));
    }
  }
  return null;
}

async function submitVote(e) {
  e.preventDefault();
  if (voted && !poll.allow_change_vote) return;
  const status = $('vote-status');
  const ballot = choices();
  if (!ballot) {
    status.textContent = poll.poll_type === 'RATING' ? 'Rate at least one option.' : 'Choose at least one option.';
    return;
  }
  const body = { ...ballot, view_token: viewToken };
  const fp = await fingerprint().catch(() => undefined);
  if (fp) body.fingerprint = fp;
  const path = `/api/v1/polls/${pollId}/votes${keyQuery}`;

  $('vote-button').disabled = true;
  status.textContent = 'Sending your vote…';
  let res = await api(path, { method: 'POST', body });
  // A fresh challenge comes with each 428; a second one means the first solution was refused.
  for (let tries = 0; res.status === 428 && res.body?.error?.challenge && tries < 2; tries++) {
    status.textContent = 'Checking that you are not a robot: your browser is solving a small puzzle…';
    const captcha = await solveAltcha(res.body.error.challenge);
    if (!captcha) break;
    status.textContent = 'Sending your vote…';
    res = await api(path, { method: 'POST', body: { ...body, captcha } });
  }
  $('vote-button').disabled = false;

  if (res.status === 202) {
    voted = true;
    status.textContent = res.body.changed ? 'Your vote was changed.' : 'Thank you, your vote was counted.';
    if (poll.allow_change_vote) $('vote-button').textContent = 'Change my vote';
    else setFormEnabled(false);
  } else if (res.status === 428) {
    status.textContent = crypto.subtle
      ? 'The CAPTCHA could not be solved. Please try again.'
      : 'This vote needs a CAPTCHA, which your browser can only solve over https.';
  } else {
    status.textContent = errorText(res);
    if (res.body?.error?.code === 'ALREADY_VOTED') setFormEnabled(false);
  }
}

// ---------------------------------------------------------------- live results

let socket = null;
let retryTimer;
let attempt = 0;
let finalSeen = false;

function liveUrl() {
  const configured = meta('realtime-url');
  const url = new URL(configured || `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.hostname}:${meta('realtime-port')}/ws`);
  url.searchParams.set('poll_id', pollId);
  if (key) url.searchParams.set('key', key);
  if (token()) url.searchParams.set('token', token());
  return url.href;
}

function connectLive() {
  clearTimeout(retryTimer);
  if (socket) {
    socket.onclose = null;
    socket.close(1000);
  }
  $('live-status').textContent = 'Connecting to live results…';
  try {
    socket = new WebSocket(liveUrl());
  } catch {
    $('live-status').textContent = 'Live results are not available (bad gateway address).';
    return;
  }
  socket.onmessage = (e) => {
    let m;
    try {
      m = JSON.parse(e.data);
    } catch {
      return;
    }
    if (m.type !== 'results' || String(m.poll_id) !== pollId) return;
    attempt = 0;
    renderResults(m);
  };
  socket.onclose = onLiveClose;
}

// Refusals say something that reconnecting will not change; anything else is worth another try.
const REFUSALS = {
  4401: () => 'Live results refused your sign-in token (malformed, badly signed or expired).',
  4403: (reason) =>
    reason === 'RESULTS_HIDDEN'
      ? 'Results are hidden until the poll closes.'
      : reason === 'AUTH_REQUIRED'
        ? 'Sign in to see the results of this poll.'
        : 'You are not allowed to see the results of this poll.',
  4404: () => 'No such poll.',
};

function onLiveClose(e) {
  socket = null;
  const refusal = REFUSALS[e.code];
  if (refusal) {
    $('live-status').textContent = refusal(e.reason);
    return;
  }
  if (e.code === 1000 || finalSeen) {
    if (finalSeen) $('live-status').textContent = 'The poll is closed; these are the final results.';
    return;
  }
  // Exponential backoff with jitter, so a gateway restart is not met by every watcher at once.
  const delay = Math.min(30_000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
  attempt++;
  const why = e.code === 1011 ? 'Live results are unavailable right now' : 'Connection to live results lost';
  $('live-status').textContent = `${why}; reconnecting in ${Math.round(delay / 1000)} s…`;
  retryTimer = setTimeout(connectLive, delay);
}

function renderResults(m) {
  const counts = m.counts ?? {};
  const sum = Object.values(counts).reduce((a, b) => a + b, 0);
  const unit = { RANKED: 'first preference', RATING: 'rating' }[poll.poll_type] ?? 'vote';
  const means = new Map((m.rating?.ranking ?? []).map((r) => [String(r.option_id), r.mean]));
  const rows = poll.options.map((o) => {
    const n = counts[o.option_id] ?? 0;
    // As GET /results: a share of all counted selections, two decimals.
    const pct = sum ? Math.round((n / sum) * 10000) / 100 : 0;
    const bar = el('span', { className: 'bar' });
    bar.style.width = `${pct}%`; // CSSOM, which the CSP allows (unlike a style attribute)
    const mean = means.get(String(o.option_id));
    const figures = `${n} ${unit}${n === 1 ? '' : 's'} · ${pct}%${typeof mean === 'number' ? ` · average ${mean.toFixed(2)}` : ''}`;
    return el('li', {}, el('span', { className: 'bar-label' }, el('span', {}, o.text), el('span', { className: 'meta' }, figures)), el('span', { className: 'track' }, bar));
  });
  $('results-bars').replaceChildren(...rows);
  $('results-total').textContent = `${m.total_votes} ${m.total_votes === 1 ? 'vote' : 'votes'} counted${m.pending_review ? ` (${m.pending_review} awaiting review)` : ''}`;
  const winner = m.ranked && poll.options.find((o) => o.option_id === m.ranked.winner);
  $('results-extra').textContent = winner ? `${m.final ? 'Winner' : 'Leading'} after instant runoff: ${winner.text}` : '';
  $('final-badge').hidden = !m.final;
  $('live-status').textContent = m.final ? 'The poll is closed; these are the final results.' : 'Live';
  if (m.final && !finalSeen) {
    finalSeen = true;
    setFormEnabled(false);
    $('vote-status').textContent ||= 'This poll is closed.';
  }
}

$('vote-form').addEventListener('submit', submitVote);
setupSignIn(() => {
  finalSeen = false;
  voted = false;
  loadPoll();
});
loadPoll();
