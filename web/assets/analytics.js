// GET /polls/:id/analytics: the owner's figures and charts (Chart.js, served by this API from
// node_modules as /vendor/chart.umd.min.js, a classic script that defines window.Chart), and the
// vote export as a CSV download.
import { $, api, el, errorText, pollFromPath, setupSignIn, token, when } from './common.js';

const { pollId, keyQuery } = pollFromPath();
const charts = new Map();
let data = null;
let scale = 'minute';

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
const palette = () => [css('--bar'), css('--accent2'), css('--warn'), css('--bad'), css('--muted'), css('--ok')];
const seconds = (s) => (s === null || s === undefined ? '–' : s < 60 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`);
const percent = (x) => `${Math.round(x * 1000) / 10}%`;

function figure(label, value, hint) {
  return el('div', {}, el('dt', {}, label), el('dd', {}, value), hint ? el('dd', { className: 'meta' }, hint) : '');
}

function table(id, head, rows) {
  $(id).replaceChildren(
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        head.map((h) => el('th', { scope: 'col' }, h)),
      ),
    ),
    el(
      'tbody',
      {},
      rows.map((r) =>
        el(
          'tr',
          {},
          r.map((c, i) => (i === 0 ? el('th', { scope: 'row' }, String(c)) : el('td', {}, String(c)))),
        ),
      ),
    ),
  );
}

/** Draws (or redraws) a chart; the canvas's label tells screen readers what it shows. */
function draw(id, config, summary) {
  charts.get(id)?.destroy();
  const canvas = $(id);
  canvas.setAttribute('aria-label', summary);
  const Chart = window.Chart;
  Chart.defaults.color = css('--muted');
  Chart.defaults.borderColor = css('--line');
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  charts.set(id, new Chart(canvas, { ...config, options: { responsive: true, maintainAspectRatio: false, animation: false, ...config.options } }));
}

/** Legends beside a doughnut where there is room, below it on a phone. */
const legendSide = () => (window.innerWidth < 600 ? 'bottom' : 'right');

function timeSeries() {
  const minute = scale === 'minute';
  const points = minute ? data.time_series_last_hour : data.time_series;
  const labels = points.map((p) => {
    const d = new Date(minute ? p.minute : p.hour);
    return minute
      ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
      : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit' });
  });
  const votes = points.map((p) => p.votes);
  draw(
    'chart-time',
    {
      type: 'bar',
      data: { labels, datasets: [{ label: 'Votes', data: votes, backgroundColor: css('--bar') }] },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    },
    `Votes ${minute ? 'per minute over the last hour' : 'per hour'}: ${votes.reduce((a, b) => a + b, 0)} in all, at most ${Math.max(0, ...votes)} in one ${minute ? 'minute' : 'hour'}.`,
  );
  table(
    'table-time',
    [minute ? 'Minute' : 'Hour', 'Votes'],
    points.map((p, i) => [labels[i], p.votes]),
  );
}

function render() {
  const a = data;
  const stored = a.unique_voters + a.suspicious_votes + a.rejected_votes;
  $('figures').replaceChildren(
    figure('Votes counted', String(a.total_votes), a.vote_changes ? `${a.vote_changes} of them changes` : null),
    figure('Voters', String(a.unique_voters)),
    figure('Visitors', String(a.unique_viewers)),
    figure('Completion rate', a.unique_viewers ? percent(a.completion_rate) : '–', a.unique_viewers ? 'voters per visitor' : 'no visitors counted yet'),
    figure('Response time', seconds(a.median_response_time_seconds), `median; average ${seconds(a.avg_response_time_seconds)}`),
    figure('Held as suspicious', stored ? percent(a.suspicious_votes / stored) : '0%', `${a.suspicious_votes} of ${stored} ballots`),
  );
  $('an-updated').textContent = a.updated_at ? `Figures as of ${when(a.updated_at)}` : 'No figures yet: they appear a few seconds after the first votes.';
  timeSeries();

  // ZZ: an address the country database does not place.
  const countries = Object.entries(a.geographic_distribution)
    .map(([c, n]) => [c === 'ZZ' ? 'unknown' : c, n])
    .sort((x, y) => y[1] - x[1]);
  const top = countries.slice(0, 10);
  const rest = countries.slice(10).reduce((s, [, n]) => s + n, 0);
  if (rest) top.push(['others', rest]);
  draw(
    'chart-countries',
    {
      type: 'bar',
      data: { labels: top.map(([c]) => c), datasets: [{ label: 'Voters', data: top.map(([, n]) => n), backgroundColor: css('--accent2') }] },
      options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    },
    top.length ? `Voters by country: ${top.map(([c, n]) => `${c} ${n}`).join(', ')}.` : 'No voters yet.',
  );
  table('table-countries', ['Country', 'Voters'], countries);

  const devices = Object.entries(a.device_breakdown);
  draw(
    'chart-devices',
    {
      type: 'doughnut',
      data: { labels: devices.map(([d]) => d), datasets: [{ data: devices.map(([, n]) => n), backgroundColor: palette() }] },
      options: { plugins: { legend: { position: legendSide() } } },
    },
    `Voters by device: ${devices.map(([d, n]) => `${d} ${n}`).join(', ')}.`,
  );
  table('table-devices', ['Device', 'Voters'], devices);

  const ballots = [
    ['counted', a.unique_voters],
    ['held for review', a.suspicious_votes],
    ['rejected', a.rejected_votes],
  ];
  draw(
    'chart-ballots',
    {
      type: 'doughnut',
      data: { labels: ballots.map(([l]) => l), datasets: [{ data: ballots.map(([, n]) => n), backgroundColor: [css('--ok'), css('--warn'), css('--bad')] }] },
      options: { plugins: { legend: { position: legendSide() } } },
    },
    `Ballots: ${ballots.map(([l, n]) => `${n} ${l}`).join(', ')}.`,
  );
  table('table-ballots', ['Ballots', 'Number'], ballots);
}

async function loadFigures() {
  const res = await api(`/api/v1/polls/${pollId}/analytics${keyQuery}`);
  if (res.status !== 200) return errorText(res);
  data = res.body;
  render();
  return null;
}

async function downloadCsv(button) {
  const status = $('csv-status');
  button.disabled = true;
  status.textContent = 'Preparing the CSV…';
  try {
    const res = await fetch(`/api/v1/polls/${pollId}/votes.csv${keyQuery}`, { headers: token() ? { authorization: `Bearer ${token()}` } : {} });
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      status.textContent = errorText({ status: res.status, body, headers: res.headers });
      return;
    }
    // The export needs the bearer token, so it cannot be a plain link: fetch it, then hand the file over.
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: `poll-${pollId}-votes.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    status.textContent = `Downloaded poll-${pollId}-votes.csv (${Math.max(1, Math.round(blob.size / 1024))} KiB).`;
  } catch {
    status.textContent = 'The download failed. Check your connection and try again.';
  } finally {
    button.disabled = false;
  }
}

async function load() {
  if (!window.Chart) {
    $('an-status').textContent = 'The chart library did not load.';
    return;
  }
  const res = await api(`/api/v1/polls/${pollId}${keyQuery}`);
  if (res.status !== 200) {
    $('an-status').textContent = errorText(res);
    return;
  }
  $('an-question').textContent = res.body.question;
  document.title = `Analytics: ${res.body.question}`;
  $('back-link').href = `/polls/${pollId}${keyQuery}`;
  const failed = await loadFigures();
  if (failed) {
    $('an-status').textContent = failed;
    return;
  }
  $('an-status').textContent = '';
  $('analytics').hidden = false;
  // The hidden container had no size: draw once more now that it shows.
  render();
  setInterval(loadFigures, 15_000);
}

for (const [id, value] of [
  ['scale-minute', 'minute'],
  ['scale-hour', 'hour'],
]) {
  $(id).addEventListener('click', () => {
    scale = value;
    $('scale-minute').setAttribute('aria-pressed', String(value === 'minute'));
    $('scale-hour').setAttribute('aria-pressed', String(value === 'hour'));
    if (data) timeSeries();
  });
}
// A phone turned sideways (or a test's new viewport) moves the legends.
let resized = null;
window.addEventListener('resize', () => {
  clearTimeout(resized);
  resized = setTimeout(() => data && render(), 100);
});
$('download-csv').addEventListener('click', (e) => downloadCsv(e.currentTarget));
$('refresh').addEventListener('click', loadFigures);
setupSignIn();
load();
