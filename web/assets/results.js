// Results that explain themselves: bars for every poll type, shares of voters and of selections
// for multiple choice, the instant-runoff rounds (with Borda, Condorcet and the tie-break seed)
// for ranked polls, and mean, median and histograms for rating polls.
import { el } from './common.js';

const pct = (n, d) => (d ? Math.round((n / d) * 10000) / 100 : 0);
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** A labelled bar; `share` 0..100 sets the width (through CSSOM, which the CSP allows, unlike a style attribute). */
function barRow(label, figures, share, extra = {}) {
  const bar = el('span', { className: 'bar' });
  bar.style.width = `${Math.max(0, Math.min(100, share))}%`;
  const row = el(
    'li',
    { className: extra.lead ? 'lead' : '' },
    el('span', { className: 'bar-label' }, el('span', { className: 'bar-text' }, label), el('span', { className: 'meta figures' }, figures)),
    el('span', { className: 'track', ariaHidden: 'true' }, bar),
  );
  if (extra.after) row.append(extra.after);
  return row;
}

const textOf = (poll, id) => poll.options.find((o) => String(o.option_id) === String(id))?.text ?? `#${id}`;
const names = (poll, ids) => ids.map((id) => textOf(poll, id)).join(', ');

/**
 * Renders results into `box`. `m` is the live message (or GET /results as one); `details` is the
 * last GET /results body, for what the live message leaves out (rounds, histograms).
 */
export function renderResults(box, poll, m, details) {
  const counts = m.counts ?? {};
  const parts = [];
  const total = el('p', { className: 'total' }, `${plural(m.total_votes, 'vote')} counted`);
  if (m.pending_review) total.append(el('span', { className: 'meta' }, ` · ${m.pending_review} awaiting review`));
  parts.push(total);
  const renderers = { SINGLE_CHOICE: single, MULTIPLE_CHOICE: multiple, RANKED: ranked, RATING: rating };
  parts.push(...renderers[poll.poll_type](poll, m, counts, details));
  box.replaceChildren(...parts);
}

function single(poll, _m, counts) {
  const sum = Object.values(counts).reduce((a, b) => a + b, 0);
  const top = Math.max(0, ...Object.values(counts));
  const rows = poll.options.map((o) => {
    const n = counts[o.option_id] ?? 0;
    return barRow(o.text, `${plural(n, 'vote')} · ${pct(n, sum)}%`, pct(n, sum), { lead: n > 0 && n === top });
  });
  return [el('ul', { className: 'bars' }, rows)];
}

function multiple(poll, m, counts) {
  const voters = m.total_votes;
  const selections = Object.values(counts).reduce((a, b) => a + b, 0);
  const top = Math.max(0, ...Object.values(counts));
  const rows = poll.options.map((o) => {
    const n = counts[o.option_id] ?? 0;
    return barRow(o.text, `${pct(n, voters)}% of voters (${n} of ${voters}) · ${pct(n, selections)}% of selections`, pct(n, voters), {
      lead: n > 0 && n === top,
    });
  });
  return [
    el('ul', { className: 'bars' }, rows),
    el(
      'p',
      { className: 'meta explain' },
      `Each voter could pick ${poll.settings.max_choices >= poll.options.length ? 'any number of options' : `up to ${poll.settings.max_choices} options`}. `,
      `The bars show the share of voters who picked each option, so they can add up to more than 100%; the share of selections (${plural(selections, 'selection')} in all) adds up to 100%.`,
    ),
  ];
}

function ranked(poll, m, counts, details) {
  const sum = Object.values(counts).reduce((a, b) => a + b, 0);
  const out = [];
  const r = details?.ranked;
  const winnerId = r ? r.winner : m.ranked?.winner;
  const winner = winnerId !== null && winnerId !== undefined ? textOf(poll, winnerId) : null;
  if (winner) out.push(el('p', { className: 'winner' }, `${m.final ? 'Winner' : 'Leading'} after instant runoff: `, el('strong', {}, winner)));
  else if (m.total_votes) out.push(el('p', { className: 'winner' }, 'No winner yet.'));
  out.push(el('h3', {}, 'First preferences'));
  out.push(
    el(
      'ul',
      { className: 'bars' },
      poll.options.map((o) => {
        const n = counts[o.option_id] ?? 0;
        return barRow(o.text, `${plural(n, 'first preference')} · ${pct(n, sum)}%`, pct(n, sum), { lead: String(o.option_id) === String(winnerId) });
      }),
    ),
  );
  if (!r) return out;
  out.push(...runoffRounds(poll, r, m.total_votes));
  if (m.total_votes) out.push(...otherMethods(poll, r));
  out.push(seedNote(r, m.final));
  return out;
}

/** The instant-runoff count round by round: a table of tallies and a sentence per round. */
function runoffRounds(poll, r, ballots) {
  if (!r.rounds.length || !ballots) return [];
  const eliminatedIn = new Map();
  for (const round of r.rounds) for (const id of round.eliminated) eliminatedIn.set(String(id), round.round);
  const last = r.rounds.at(-1);
  // Who lasted longest first; among the finalists, the bigger final tally.
  const order = [...poll.options].sort((a, b) => {
    const ea = eliminatedIn.get(String(a.option_id)) ?? Infinity;
    const eb = eliminatedIn.get(String(b.option_id)) ?? Infinity;
    return eb - ea || (last.tallies[b.option_id] ?? 0) - (last.tallies[a.option_id] ?? 0);
  });
  const head = el(
    'tr',
    {},
    el('th', { scope: 'col' }, 'Option'),
    r.rounds.map((round) => el('th', { scope: 'col' }, `Round ${round.round}`)),
  );
  const body = order.map((o) => {
    const id = String(o.option_id);
    return el(
      'tr',
      { className: id === String(r.winner) ? 'won' : '' },
      el('th', { scope: 'row' }, o.text),
      r.rounds.map((round) => {
        if (!(id in round.tallies)) return el('td', { className: 'gone' }, '');
        const out = round.eliminated.map(String).includes(id);
        return el('td', { className: out ? 'out' : '' }, String(round.tallies[id]), out ? el('span', { className: 'meta' }, ' eliminated') : '');
      }),
    );
  });
  const exhausted = el(
    'tr',
    { className: 'exhausted' },
    el('th', { scope: 'row' }, 'Exhausted (no choice left)'),
    r.rounds.map((round) => el('td', {}, String(round.exhausted))),
  );
  const table = el(
    'table',
    { className: 'rounds' },
    el('caption', {}, 'Instant-runoff rounds: ballots counting for each option'),
    el('thead', {}, head),
    el('tbody', {}, body, exhausted),
  );

  const steps = r.rounds.map((round) => {
    const continuing = ballots - round.exhausted;
    const need = Math.floor(continuing / 2) + 1;
    const text = [`Round ${round.round}: ${plural(continuing, 'ballot')} still count (a majority is ${need}).`];
    if (round.eliminated.length === 0) {
      text.push(
        r.winner !== null && round === r.rounds.at(-1)
          ? ` ${textOf(poll, r.winner)} has ${round.tallies[r.winner]}, more than half: it wins.`
          : ' Nobody can win: no ballot ranks any option left.',
      );
    } else {
      const tie = r.tie_breaks.find((t) => t.round === round.round);
      if (tie) {
        const rule = tie.rule === 'PREVIOUS_ROUND' ? 'it had fewer votes in an earlier round' : 'a draw from the poll\u2019s tie-break seed (see below)';
        text.push(` ${names(poll, tie.tied)} tied for fewest votes; ${textOf(poll, tie.eliminated)} is eliminated because ${rule}.`);
      } else {
        text.push(
          ` No majority: ${names(poll, round.eliminated)} ${round.eliminated.length > 1 ? 'are eliminated together (together fewer votes than the next option, so none could catch up)' : 'is eliminated (fewest votes)'}; their ballots move to their next choice.`,
        );
      }
    }
    if (round.exhausted) text.push(` ${plural(round.exhausted, 'ballot')} had no choice left.`);
    return el('li', {}, text.join(''));
  });
  return [el('h3', {}, 'How the winner was found'), el('div', { className: 'table-scroll' }, table), el('ol', { className: 'steps' }, steps)];
}

function otherMethods(poll, r) {
  const borda = Object.entries(r.borda ?? {}).sort((a, b) => b[1] - a[1]);
  const n = poll.options.length;
  const condorcet = r.condorcet_winner === null ? 'none (no option beats every other one head to head: a tie or a cycle)' : textOf(poll, r.condorcet_winner);
  return [
    el('h3', {}, 'Other ways to count the same ballots'),
    el(
      'p',
      { className: 'meta' },
      `Borda count: ${n - 1} points for a first place, ${n - 2} for a second, and so on; unranked options get 0. For comparison only: the instant runoff decides.`,
    ),
    el(
      'ul',
      { className: 'borda' },
      borda.map(([id, points]) => el('li', {}, `${textOf(poll, id)}: ${plural(points, 'point')}`)),
    ),
    el('p', {}, 'Condorcet winner: ', el('strong', {}, condorcet)),
  ];
}

function seedNote(r, final) {
  const box = el('details', { className: 'seed' }, el('summary', {}, 'Recount it yourself: the tie-break seed'));
  box.append(
    el(
      'p',
      { className: 'meta' },
      'A tie that earlier rounds cannot break is settled by sha256(seed:round:tied option ids, ascending, comma-separated); the first 6 bytes, modulo the number tied, pick who is eliminated. The seed was fixed when the poll was created; its hash is published from the start and the seed itself at the close, so nobody could steer a tie.',
    ),
  );
  box.append(el('p', {}, 'Seed hash (sha256): ', el('code', {}, r.seed_hash ?? '')));
  box.append(el('p', {}, final && r.seed ? 'Seed: ' : 'Seed: revealed when the poll closes.', final && r.seed ? el('code', {}, r.seed) : ''));
  return box;
}

function rating(poll, m, counts, details) {
  const { rating_min: min, rating_max: max } = poll.settings;
  const live = new Map((m.rating?.ranking ?? []).map((r) => [String(r.option_id), r]));
  const full = new Map((details?.rating?.options ?? []).map((r) => [String(r.option_id), r]));
  // Best first, as the server orders them (Bayesian average); the live order where it is newer.
  const order =
    m.rating?.ranking?.map((r) => String(r.option_id)) ??
    details?.rating?.options.map((r) => String(r.option_id)) ??
    poll.options.map((o) => String(o.option_id));
  const rows = order.map((id, i) => {
    const f = full.get(id);
    const l = live.get(id);
    const count = l?.count ?? f?.count ?? counts[id] ?? 0;
    const mean = l?.mean ?? f?.mean ?? null;
    const figures = [mean === null ? 'no ratings yet' : `average ${mean.toFixed(2)}`];
    if (f?.median !== null && f?.median !== undefined) figures.push(`median ${f.median}`);
    figures.push(plural(count, 'rating'));
    return barRow(textOf(poll, id), figures.join(' · '), mean === null ? 0 : pct(mean - min, max - min), {
      lead: i === 0 && count > 0,
      after: f ? histogram(f.histogram, min, max, textOf(poll, id)) : null,
    });
  });
  return [
    el('ul', { className: 'bars' }, rows),
    el(
      'p',
      { className: 'meta explain' },
      `Ratings from ${min} to ${max}. Ordered best first by a weighted average that starts each option with a few average ratings, so one early 5 does not beat many 4.8s. Bars show the average on the scale; below each, how many gave each rating.`,
    ),
  ];
}

function histogram(h, min, max, label) {
  const values = [];
  for (let v = min; v <= max; v++) values.push([v, h[String(v)] ?? 0]);
  const most = Math.max(1, ...values.map(([, n]) => n));
  const list = el('ol', { className: 'histogram', ariaLabel: `How ${label} was rated` });
  for (const [v, n] of values) {
    const bar = el('span', { className: 'hbar' });
    bar.style.height = `${pct(n, most)}%`;
    list.append(
      el(
        'li',
        { title: `${v}: ${plural(n, 'rating')}` },
        el('span', { className: 'hcol', ariaHidden: 'true' }, bar),
        el('span', { className: 'hval' }, String(v)),
        el('span', { className: 'visually-hidden' }, `: ${plural(n, 'rating')}`),
      ),
    );
  }
  return list;
}
