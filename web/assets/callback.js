// GET /auth/callback: where the identity provider sends the browser back with a code; trades it
// for a token (PKCE) and returns to the page the sign-in started from.
import { $, finishProviderSignIn, setupSignIn } from './common.js';

setupSignIn();
finishProviderSignIn().then(
  (back) => location.replace(back),
  (err) => ($('callback-status').textContent = `The sign-in did not complete: ${err.message}`),
);
