import type { Registry } from 'prom-client';
import { prom } from '../shared/metrics.js';

/** The API's own metrics (labels never carry poll ids, IPs or user ids). */
export function createApiMetrics(registry: Registry) {
  return {
    httpDuration: new prom.Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route template and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    votesAccepted: new prom.Counter({
      name: 'votes_accepted_total',
      help: 'Votes answered 202 (durably queued)',
      labelNames: ['changed'],
      registers: [registry],
    }),
    votesRejected: new prom.Counter({
      name: 'votes_rejected_total',
      help: 'Votes refused, by error code',
      labelNames: ['code'],
      registers: [registry],
    }),
    dedupHits: new prom.Counter({
      name: 'vote_dedup_hits_total',
      help: 'Votes refused because the voter had already voted',
      registers: [registry],
    }),
    votesFlagged: new prom.Counter({
      name: 'votes_flagged_total',
      help: 'Votes accepted as SUSPICIOUS, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    reviews: new prom.Counter({
      name: 'vote_reviews_total',
      help: 'Moderation decisions, by decision',
      labelNames: ['decision'],
      registers: [registry],
    }),
    integrityDecisions: new prom.Counter({
      name: 'vote_integrity_decisions_total',
      help: 'Rate-limit and CAPTCHA decisions on votes (check: rate_limit | captcha; outcome: limited | required | solved | failed)',
      labelNames: ['check', 'outcome'],
      registers: [registry],
    }),
    originsRefused: new prom.Counter({
      name: 'http_origins_refused_total',
      help: "Browser requests refused 403 ORIGIN_NOT_ALLOWED (an Origin that is neither our pages, CORS_ORIGINS nor the poll's embed origins)",
      registers: [registry],
    }),
    votePathSeconds: new prom.Histogram({
      name: 'vote_path_duration_seconds',
      help: 'Time from a vote request to its answer (the hot path)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
  };
}
