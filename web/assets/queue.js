// GET /moderation (admins): every poll with votes waiting for review, linking to its review page.
import { $, api, el, errorText, setupSignIn, signedIn } from './common.js';

async function load() {
  const status = $('queue-status');
  if (!signedIn()?.isAdmin) {
    status.textContent = 'This page is for admins. Poll creators review their own polls from "My polls".';
    return;
  }
  // Up to 1,000 held votes, a page at a time, grouped by poll (admins' contract endpoint).
  const perPoll = new Map();
  let cursor = null;
  for (let page = 0; page < 5; page++) {
    const res = await api(`/api/v1/admin/flagged-votes?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (res.status !== 200) {
      status.textContent = errorText(res);
      return;
    }
    for (const v of res.body.items) perPoll.set(v.poll_id, (perPoll.get(v.poll_id) ?? 0) + 1);
    cursor = res.body.next_cursor;
    if (!cursor) break;
  }
  const polls = [...perPoll].sort((a, b) => b[1] - a[1]);
  const items = await Promise.all(
    polls.map(async ([pollId, n]) => {
      const res = await api(`/api/v1/polls/${pollId}`);
      const question = res.status === 200 ? res.body.question : `Poll ${pollId}`;
      const keyQuery = res.body?.access_key ? `?key=${encodeURIComponent(res.body.access_key)}` : '';
      return el(
        'li',
        {},
        el('a', { href: `/polls/${pollId}/moderation${keyQuery}` }, question),
        el('span', { className: 'meta' }, `${n}${cursor ? '+' : ''} held ${n === 1 ? 'vote' : 'votes'}`),
      );
    }),
  );
  $('queue').replaceChildren(...items);
  status.textContent = items.length ? '' : 'Nothing waits for review.';
}

setupSignIn();
load();
