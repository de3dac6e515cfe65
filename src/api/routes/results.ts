import { Router } from 'express';
import type { ResultsService } from '../services/results.js';
import { accessKeyOf, callerOf, pollIdOf } from './polls.js';

export function resultsRouter({ results }: { results: ResultsService }) {
  const r = Router();
  r.get('/:id/results', async (req, res) => {
    res.json(await results.get(pollIdOf(req), callerOf(req), accessKeyOf(req)));
  });
  return r;
}
