// GET /polls/mine: the caller's own polls (drafts, private and closed ones too), with publish,
// close and a new end time in place, and links to share, moderate and analyse each.
import { $, api, confirmDialog, el, errorText, setupSignIn, signedIn, STATUS_LABELS, toLocalInput, TYPE_LABELS, when } from './common.js';

const list = $('mine');
const more = $('more');
const status = $('mine-status');
let cursor = null;
let filter = '';

function pollLink(poll, suffix = '') {
  return `/polls/${poll.poll_id}${suffix}${poll.access_key ? `?key=${encodeURIComponent(poll.access_key)}` : ''}`;
}

function item(poll) {
  const say = el('p', { className: 'status', role: 'status' });
  const details = [TYPE_LABELS[poll.poll_type], poll.visibility.toLowerCase(), `${poll.options.length} options`];
  if (poll.end_time) details.push(`${poll.status === 'CLOSED' ? 'ended' : 'ends'} ${when(poll.end_time)}`);
  if (!poll.settings.show_results_before_close) details.push('results hidden until close');
  const actions = el('div', { className: 'actions' });
  const act = async (button, call) => {
    button.disabled = true;
    const res = await call();
    button.disabled = false;
    if (res.status !== 200) {
      say.textContent = errorText(res);
      return;
    }
    li.replaceWith(item(res.body));
  };
  if (poll.status === 'DRAFT') {
    const publish = el('button', { type: 'button' }, 'Publish');
    publish.addEventListener('click', () => act(publish, () => api(`/api/v1/polls/${poll.poll_id}/publish`, { method: 'POST' })));
    actions.append(publish);
  }
  if (poll.status === 'ACTIVE') {
    const close = el('button', { type: 'button', className: 'secondary' }, 'Close');
    close.addEventListener('click', async () => {
      if (
        await confirmDialog({
          title: 'Close this poll?',
          text: `"${poll.question}" stops taking votes and its results become final.`,
          confirm: 'Close the poll',
        })
      ) {
        act(close, () => api(`/api/v1/polls/${poll.poll_id}/close`, { method: 'POST' }));
      }
    });
    actions.append(close);
  }
  actions.append(
    el('a', { href: pollLink(poll), className: 'button-link' }, poll.status === 'DRAFT' ? 'Open' : 'Results & share'),
    el('a', { href: pollLink(poll, '/moderation'), className: 'button-link' }, 'Review'),
    el('a', { href: pollLink(poll, '/analytics'), className: 'button-link' }, 'Analytics'),
  );
  const li = el(
    'li',
    {},
    el(
      'div',
      { className: 'mine-head' },
      el('a', { href: pollLink(poll) }, poll.question),
      el('span', { className: `badge status-${poll.status.toLowerCase()}` }, STATUS_LABELS[poll.status]),
    ),
    el('span', { className: 'meta' }, details.join(' · ')),
    actions,
  );
  if (poll.status !== 'CLOSED') {
    const id = `end-${poll.poll_id}`;
    const input = el('input', { type: 'datetime-local', id, value: toLocalInput(poll.end_time) });
    const save = el('button', { type: 'submit', className: 'secondary' }, poll.end_time ? 'Extend' : 'Set end');
    const form = el('form', { className: 'inline-form' }, el('label', { htmlFor: id }, 'Ends'), input, save);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      act(save, () => api(`/api/v1/polls/${poll.poll_id}`, { method: 'PATCH', body: { end_time: input.value ? new Date(input.value).toISOString() : null } }));
    });
    li.append(form);
  }
  li.append(say);
  return li;
}

async function loadPage() {
  if (!signedIn()) {
    status.textContent = 'Sign in to see your polls (the "Sign in" menu at the top).';
    return;
  }
  more.disabled = true;
  status.textContent = list.children.length ? '' : 'Loading…';
  const query = new URLSearchParams({ creator: 'me', limit: '20' });
  if (filter) query.set('status', filter);
  if (cursor) query.set('cursor', cursor);
  const res = await api(`/api/v1/polls?${query}`);
  more.disabled = false;
  if (res.status !== 200) {
    status.textContent = errorText(res);
    return;
  }
  list.append(...res.body.items.map(item));
  cursor = res.body.next_cursor;
  more.hidden = !cursor;
  status.textContent = list.children.length ? '' : 'No polls here yet.';
}

function reload() {
  list.replaceChildren();
  cursor = null;
  loadPage();
}

for (const b of document.querySelectorAll('.filter')) {
  b.addEventListener('click', () => {
    filter = b.dataset.status;
    for (const other of document.querySelectorAll('.filter')) other.setAttribute('aria-pressed', String(other === b));
    reload();
  });
}
more.addEventListener('click', loadPage);
setupSignIn(reload);
loadPage();
