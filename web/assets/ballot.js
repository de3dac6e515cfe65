// The vote form of each poll type, and casting the vote (CAPTCHA included), for the poll page
// and the embed. Everything is a native control, so keyboards and screen readers work as usual.
import { api, el, errorText } from './common.js';

/** An option's label: its text, and its image when that is an https URL (the CSP allows no other). */
export function optionLabel(option) {
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

/** What to tell the voter above the choices. */
export function ballotHint(poll) {
  const s = poll.settings;
  return {
    SINGLE_CHOICE: 'Choose one',
    MULTIPLE_CHOICE: s.max_choices >= poll.options.length ? 'Choose any' : `Choose up to ${s.max_choices}`,
    RANKED: 'Put them in your order, most preferred first (untick options you do not want to rank)',
    RATING: `Rate from ${s.rating_min} to ${s.rating_max} (leave out options you do not rate)`,
  }[poll.poll_type];
}

/** Builds the choices of a poll into `box`; returns a function reading them as a ballot (null: nothing chosen). */
export function buildChoices(poll, box, announce = () => {}) {
  box.replaceChildren();
  const builders = { SINGLE_CHOICE: singleChoice, MULTIPLE_CHOICE: multipleChoice, RANKED: ranked, RATING: rating };
  return builders[poll.poll_type](poll, box, announce);
}

function singleChoice(poll, box) {
  const name = `choice-${poll.poll_id}`;
  for (const o of poll.options) {
    box.append(el('label', { className: 'choice' }, el('input', { type: 'radio', name, value: o.option_id }), optionLabel(o)));
  }
  return () => {
    const picked = box.querySelector('input:checked');
    return picked ? { options: [Number(picked.value)] } : null;
  };
}

function multipleChoice(poll, box) {
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

function ranked(poll, box, announce) {
  const list = el('ol', { className: 'ranking' });
  const position = (row) => [...list.children].filter((r) => r.querySelector('input').checked).indexOf(row) + 1;
  const move = (row, up, button) => {
    const other = up ? row.previousElementSibling : row.nextElementSibling;
    if (!other) return;
    if (up) other.before(row);
    else other.after(row);
    // Moving a node drops its focus: keep the keyboard where it was.
    button.focus();
    const text = row.querySelector('.option-text').textContent;
    announce(position(row) ? `${text}: now choice ${position(row)}` : `${text} moved ${up ? 'up' : 'down'}`);
  };
  for (const o of poll.options) {
    const include = el('input', { type: 'checkbox', checked: true, ariaLabel: `Rank ${o.text}` });
    const up = el('button', { type: 'button', className: 'move', title: 'Move up', ariaLabel: `Move ${o.text} up` }, '↑');
    const down = el('button', { type: 'button', className: 'move', title: 'Move down', ariaLabel: `Move ${o.text} down` }, '↓');
    const row = el('li', {}, include, optionLabel(o), up, down);
    row.dataset.optionId = o.option_id;
    up.addEventListener('click', () => move(row, true, up));
    down.addEventListener('click', () => move(row, false, down));
    // Alt+arrow moves the focused row: the order without hunting for the buttons.
    row.addEventListener('keydown', (e) => {
      if (!e.altKey || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown')) return;
      e.preventDefault();
      move(row, e.key === 'ArrowUp', e.key === 'ArrowUp' ? up : down);
    });
    list.append(row);
  }
  box.append(list, el('p', { className: 'meta hint' }, 'Tip: Alt+↑ / Alt+↓ moves the focused option.'));
  return () => {
    const order = [...list.children].filter((row) => row.querySelector('input').checked).map((row) => Number(row.dataset.optionId));
    return order.length ? { ranking: order } : null;
  };
}

function rating(poll, box) {
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

/** Enables or disables every control of a form. */
export function setFormEnabled(form, poll, on) {
  for (const c of form.querySelectorAll('input, select, button')) c.disabled = !on;
  if (on && poll.poll_type === 'MULTIPLE_CHOICE') form.querySelector('.choices')?.dispatchEvent(new Event('change'));
}

/** A hash of stable browser traits: tells apart voters behind one address with the same browser. */
export async function fingerprint() {
  if (!crypto.subtle) return undefined;
  const traits = [
    Intl.DateTimeFormat().resolvedOptions().timeZone,
    navigator.languages?.join(','),
    navigator.hardwareConcurrency,
    navigator.platform,
    screen.colorDepth,
    navigator.deviceMemory,
    navigator.maxTouchPoints,
  ];
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

/**
 * Casts a ballot, solving a CAPTCHA when the server asks for one. Reports progress through
 * `say`; returns the last answer and the fingerprint it was cast with.
 */
export async function castVote({ pollId, keyQuery, ballot, viewToken, say }) {
  const body = { ...ballot, view_token: viewToken };
  const fp = await fingerprint().catch(() => undefined);
  if (fp) body.fingerprint = fp;
  const path = `/api/v1/polls/${pollId}/votes${keyQuery}`;
  say('Sending your vote…');
  let res = await api(path, { method: 'POST', body });
  // A fresh challenge comes with each 428; a second one means the first solution was refused.
  for (let tries = 0; res.status === 428 && res.body?.error?.challenge && tries < 2; tries++) {
    say('Checking that you are not a robot: your browser is solving a small puzzle…');
    const captcha = await solveAltcha(res.body.error.challenge);
    if (!captcha) break;
    say('Sending your vote…');
    res = await api(path, { method: 'POST', body: { ...body, captcha } });
  }
  return { res, fingerprint: fp };
}

/** A sentence for a vote answer that was not 202. */
export function voteErrorText(res) {
  if (res.status === 428) {
    return crypto.subtle ? 'The CAPTCHA could not be solved. Please try again.' : 'This vote needs a CAPTCHA, which your browser can only solve over https.';
  }
  return errorText(res);
}

/**
 * Follows what became of an accepted vote: a vote can be held for review (a burst from its
 * network, an answer faster than a human reads), at once or when its network's burst is noticed
 * a moment later. Asks GET /my-vote a few times over ~15 s; `onStatus` gets COUNTED,
 * UNDER_REVIEW, REJECTED or NONE (not written yet).
 */
export function followVote({ pollId, key, fingerprint: fp, onStatus }) {
  const query = new URLSearchParams();
  if (fp) query.set('fingerprint', fp);
  if (key) query.set('key', key);
  let stopped = false;
  const delays = [800, 1500, 3000, 5000, 5000];
  (async () => {
    for (const delay of delays) {
      await new Promise((r) => setTimeout(r, delay));
      if (stopped) return;
      const res = await api(`/api/v1/polls/${pollId}/my-vote?${query}`);
      if (res.status === 200) onStatus(res.body.status);
      if (res.body?.status === 'UNDER_REVIEW' || res.body?.status === 'REJECTED') return;
    }
  })();
  return () => (stopped = true);
}

/** The sentence for a vote's review status (or null to keep the current one). */
export function reviewText(status, changed) {
  if (status === 'UNDER_REVIEW')
    return 'Received, under review: many votes came from your network at once (or very fast), so a moderator checks them before they count.';
  if (status === 'REJECTED') return 'Your vote was received but a moderator did not count it.';
  if (status === 'COUNTED') return changed ? 'Your vote was changed and is counted.' : 'Thank you, your vote is counted.';
  return null;
}
