// GET /polls/new: every poll type with every setting, saved as a draft or published at once.
import { $, api, el, errorText, setupSignIn, signedIn } from './common.js';

const optionsList = $('options');
let optionCount = 0;

function addOption(text = '') {
  const n = ++optionCount;
  const textInput = el('input', { type: 'text', id: `option-${n}`, maxLength: 200, value: text, autocomplete: 'off', className: 'option-text-input' });
  const imageInput = el('input', {
    type: 'url',
    id: `option-image-${n}`,
    maxLength: 2048,
    placeholder: 'https://… (optional image)',
    className: 'option-image-input',
  });
  const remove = el('button', { type: 'button', className: 'secondary small' }, 'Remove');
  const row = el(
    'li',
    { className: 'option-input' },
    el('label', { htmlFor: textInput.id, className: 'visually-hidden' }, `Option ${n}`),
    textInput,
    el('label', { htmlFor: imageInput.id, className: 'visually-hidden' }, `Image of option ${n}`),
    imageInput,
    remove,
  );
  textInput.placeholder = `Option ${optionsList.children.length + 1}`;
  remove.setAttribute('aria-label', `Remove option ${n}`);
  remove.addEventListener('click', () => {
    row.remove();
    updateRemovable();
    optionsList.querySelector('input')?.focus();
  });
  optionsList.append(row);
  updateRemovable();
  return textInput;
}

function pollType() {
  return document.querySelector('input[name="poll_type"]:checked').value;
}

/** A rating poll may have a single option; the others need two. */
function updateRemovable() {
  const min = pollType() === 'RATING' ? 1 : 2;
  const rows = [...optionsList.children];
  for (const row of rows) row.querySelector('button').disabled = rows.length <= min;
}

function updateType() {
  const type = pollType();
  $('max-choices-row').hidden = type !== 'MULTIPLE_CHOICE';
  $('rating-row').hidden = type !== 'RATING';
  updateRemovable();
}

function readOptions() {
  return [...optionsList.children]
    .map((row) => ({ text: row.querySelector('.option-text-input').value.trim(), image: row.querySelector('.option-image-input').value.trim() }))
    .filter((o) => o.text)
    .map((o) => (o.image ? { text: o.text, image_url: o.image } : { text: o.text }));
}

const isoOf = (id) => ($(id).value ? new Date($(id).value).toISOString() : null);

function body(status) {
  const type = pollType();
  const settings = {
    show_results_before_close: $('show-results').checked,
    require_authentication: $('require-auth').checked,
    captcha: $('captcha').value,
    embed_origins: $('embed-origins')
      .value.split(/[\s,]+/)
      .map((o) => o.trim().replace(/\/$/, ''))
      .filter(Boolean),
  };
  if (type === 'MULTIPLE_CHOICE' && $('max-choices').value) settings.max_choices = Number($('max-choices').value);
  if (type === 'RATING') {
    settings.rating_min = Number($('rating-min').value);
    settings.rating_max = Number($('rating-max').value);
  }
  return {
    question: $('question').value.trim(),
    poll_type: type,
    options: readOptions(),
    is_anonymous: $('anonymous').checked,
    allow_change_vote: $('allow-change').checked,
    visibility: $('visibility').value,
    start_time: isoOf('start-time'),
    end_time: isoOf('end-time'),
    settings,
    status,
  };
}

// The server names the field it refused; point the author at it.
const FIELD_INPUTS = {
  question: 'question',
  options: 'option-1',
  visibility: 'visibility',
  start_time: 'start-time',
  end_time: 'end-time',
  'settings.max_choices': 'max-choices',
  'settings.rating_min': 'rating-min',
  'settings.rating_max': 'rating-max',
  'settings.embed_origins': 'embed-origins',
};

function fieldInput(field) {
  if (!field) return null;
  if (/^options\.\d+\.image_url/.test(field)) return optionsList.children[Number(field.split('.')[1])]?.querySelector('.option-image-input');
  if (/^options\.\d+/.test(field)) return optionsList.children[Number(field.split('.')[1])]?.querySelector('.option-text-input');
  const key = Object.keys(FIELD_INPUTS).find((k) => field === k || field.startsWith(`${k}.`));
  return key ? ($(FIELD_INPUTS[key]) ?? optionsList.querySelector('input')) : null;
}

async function submit(e) {
  e.preventDefault();
  const status = e.submitter?.value === 'DRAFT' ? 'DRAFT' : 'ACTIVE';
  const out = $('new-status');
  for (const bad of document.querySelectorAll('[aria-invalid="true"]')) bad.removeAttribute('aria-invalid');
  const b = body(status);
  if (!b.question) {
    out.textContent = 'Write the question first.';
    $('question').setAttribute('aria-invalid', 'true');
    $('question').focus();
    return;
  }
  if (b.options.length < (b.poll_type === 'RATING' ? 1 : 2)) {
    out.textContent = b.poll_type === 'RATING' ? 'Add at least one option to rate.' : 'Add at least two options.';
    optionsList.querySelector('.option-text-input')?.focus();
    return;
  }
  for (const button of document.querySelectorAll('#new-form .actions button')) button.disabled = true;
  out.textContent = status === 'DRAFT' ? 'Saving the draft…' : 'Publishing…';
  const res = await api('/api/v1/polls', { method: 'POST', body: b });
  for (const button of document.querySelectorAll('#new-form .actions button')) button.disabled = false;
  if (res.status !== 201) {
    out.textContent = errorText(res);
    const input = fieldInput(res.body?.error?.field);
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
    return;
  }
  const poll = res.body;
  const q = new URLSearchParams({ created: '1' });
  if (poll.access_key) q.set('key', poll.access_key);
  location.assign(`/polls/${poll.poll_id}?${q}`);
}

function showSignedIn() {
  const who = signedIn();
  $('new-signin').textContent = who ? '' : 'Sign in first (the "Sign in" menu at the top): polls belong to their creator.';
  $('new-form').hidden = !who;
  $('signin').open = !who;
  $('visibility').querySelector('option[value="ORGANIZATION"]').disabled = !who?.orgId;
}

for (const r of document.querySelectorAll('input[name="poll_type"]')) r.addEventListener('change', updateType);
$('add-option').addEventListener('click', () => addOption().focus());
$('new-form').addEventListener('submit', submit);
addOption();
addOption();
updateType();
setupSignIn(showSignedIn);
showSignedIn();
