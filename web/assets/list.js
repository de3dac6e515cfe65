// GET /: the active PUBLIC polls, newest first, a page at a time (next_cursor).
import { api, el, errorText, setupSignIn, TYPE_LABELS } from './common.js';

const list = document.getElementById('polls');
const more = document.getElementById('more');
const status = document.getElementById('list-status');
let cursor = null;

function item(poll) {
  const details = [TYPE_LABELS[poll.poll_type] ?? poll.poll_type, `${poll.options.length} options`];
  if (poll.end_time) details.push(`ends ${new Date(poll.end_time).toLocaleString()}`);
  return el('li', {}, el('a', { href: `/polls/${encodeURIComponent(poll.poll_id)}` }, poll.question), el('span', { className: 'meta' }, details.join(' · ')));
}

async function loadPage() {
  more.disabled = true;
  status.textContent = list.children.length ? '' : 'Loading…';
  const query = new URLSearchParams({ status: 'ACTIVE', limit: '20' });
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
  status.textContent = list.children.length ? '' : 'No active polls right now.';
}

more.addEventListener('click', loadPage);
setupSignIn(() => {
  list.replaceChildren();
  cursor = null;
  loadPage();
});
loadPage();
