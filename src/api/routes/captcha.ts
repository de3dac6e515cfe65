import { Router } from 'express';
import type { Captcha } from '../services/captcha.js';

export function captchaRouter({ captcha }: { captcha: Captcha }) {
  const r = Router();
  r.get('/challenge', async (_req, res) => {
    res.set('Cache-Control', 'no-store').json(await captcha.challenge());
  });
  return r;
}
