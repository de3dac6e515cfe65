// Shared by the pages: API calls, the sign-in (development form, identity provider, pasted
// token), safe element building. User-provided text only ever goes in through text nodes (el),
// never as HTML.

const TOKEN_KEY = 'polls.token';
const OIDC_KEY = 'polls.oidc';

/** The payload of a JWT, only to show who is signed in (the server is what checks the token). */
export function claimsOf(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part)) ?? {};
  } catch {
    return {};
  }
}

/** The saved bearer token, or '' (storage can be off in private windows; an expired token is forgotten). */
export function token() {
  let t = '';
  try {
    t = localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
  const { exp } = claimsOf(t);
  if (t && typeof exp === 'number' && exp * 1000 < Date.now()) {
    forgetToken();
    return '';
  }
  return t;
}

/** Who is signed in, as far as the pages care: `{ userId, orgId, isAdmin }`, or null. */
export function signedIn() {
  const t = token();
  if (!t) return null;
  const c = claimsOf(t);
  return { userId: Number(c.sub), orgId: c.org ?? null, isAdmin: c.role === 'admin' };
}

function saveToken(t) {
  localStorage.setItem(TOKEN_KEY, t);
}

function forgetToken() {
  try {
    localStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing was kept
  }
}

/** The content of a <meta name=...> the server filled in. */
export function meta(name) {
  return document.querySelector(`meta[name="${name}"]`)?.getAttribute('content') ?? '';
}

/** Calls the JSON API; never throws: a network failure is status 0. */
export async function api(path, { method = 'GET', body } = {}) {
  const headers = { accept: 'application/json' };
  const t = token();
  if (t) headers.authorization = `Bearer ${t}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    return {
      status: 0,
      body: { error: { code: 'NETWORK', message: 'Could not reach the server. Check your connection and try again.' } },
      headers: new Headers(),
    };
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    // not JSON: described by the status below
  }
  return { status: res.status, body: data, headers: res.headers };
}

/** An element with properties and children; strings become text nodes. */
export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

/** Shorthand for document.getElementById. */
export const $ = (id) => document.getElementById(id);

// The server's own message is kept where it says more than a fixed sentence could
// (which field, which rule, why the poll is not open).
const MESSAGES = {
  VALIDATION_ERROR: null,
  INVALID_OPTION: 'That option is not part of this poll any more. Reload the page.',
  INVALID_SELECTION: null,
  AUTH_REQUIRED: 'Sign in to do this (the "Sign in" menu at the top).',
  INVALID_TOKEN: 'Your sign-in is malformed, badly signed or expired. Sign out and sign in again.',
  FORBIDDEN: 'You are not allowed to do this.',
  RESULTS_HIDDEN: 'Results are hidden until the poll closes.',
  POLL_NOT_FOUND: 'No such poll (or it is private and the link lacks its key).',
  POLL_NOT_ACTIVE: null,
  ALREADY_VOTED: 'You have already voted in this poll.',
  POLL_EXPIRED: 'This poll has ended.',
  PAYLOAD_TOO_LARGE: 'That is too large.',
  RATE_LIMITED: 'Too many votes from your network.',
  UNAVAILABLE: 'The service is busy or partly down; nothing was recorded. Try again in a moment.',
};

/** A sentence for an API error answer. */
export function errorText(res) {
  const err = res.body?.error;
  if (!err) return `Something went wrong (HTTP ${res.status}).`;
  let text = MESSAGES[err.code] || err.message || `Something went wrong (${err.code}).`;
  if (err.code === 'RATE_LIMITED') {
    const wait = Number(res.headers.get('retry-after')) || Math.ceil(Number(err.retry_after)) || 0;
    if (wait) text += ` Try again in ${wait} s.`;
  }
  return text;
}

const b64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
const randomText = () => b64url(crypto.getRandomValues(new Uint8Array(32)));

/** The identity provider's OpenID configuration (authorization and token endpoints). */
async function discovery(issuer) {
  const res = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`discovery answered ${res.status}`);
  return res.json();
}

/** Sends the browser to the identity provider: authorization code flow with PKCE (a public client, no secret). */
async function signInWithProvider() {
  if (!crypto.subtle) throw new Error('signing in needs https (or localhost)');
  const issuer = meta('oidc-issuer');
  const config = await discovery(issuer);
  const verifier = randomText();
  const state = randomText();
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const redirectUri = `${location.origin}/auth/callback`;
  sessionStorage.setItem(
    OIDC_KEY,
    JSON.stringify({ verifier, state, tokenEndpoint: config.token_endpoint, redirectUri, back: location.pathname + location.search }),
  );
  const url = new URL(config.authorization_endpoint);
  const params = {
    response_type: 'code',
    client_id: meta('oidc-client-id'),
    redirect_uri: redirectUri,
    scope: meta('oidc-scope') || 'openid',
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  };
  if (meta('oidc-resource')) params.resource = meta('oidc-resource');
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  location.assign(url.href);
}

/**
 * Finishes the provider sign-in on /auth/callback: checks the state, trades the code (and the
 * PKCE verifier) for tokens, keeps the access token. Returns the page to go back to.
 */
export async function finishProviderSignIn() {
  const params = new URLSearchParams(location.search);
  const saved = JSON.parse(sessionStorage.getItem(OIDC_KEY) || 'null');
  sessionStorage.removeItem(OIDC_KEY);
  if (params.get('error')) throw new Error(params.get('error_description') || params.get('error'));
  if (!saved || !params.get('code') || params.get('state') !== saved.state)
    throw new Error('This sign-in was not started here (or was already finished). Start it again.');
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code: params.get('code'),
    redirect_uri: saved.redirectUri,
    client_id: meta('oidc-client-id'),
    code_verifier: saved.verifier,
  });
  if (meta('oidc-resource')) form.set('resource', meta('oidc-resource'));
  const res = await fetch(saved.tokenEndpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || !body.access_token) throw new Error(body.error_description || body.error || `the provider answered ${res.status}`);
  saveToken(body.access_token);
  // Only a path of this site: the saved value came from this origin's own page.
  return typeof saved.back === 'string' && saved.back.startsWith('/') && !saved.back.startsWith('//') ? saved.back : '/';
}

/**
 * Wires the "Sign in" menu: the development form (outside production), the identity provider
 * (where configured) and a pasted token. `onChange` runs after signing in or out; by default
 * the page reloads, which is what every page's data depends on.
 */
export function setupSignIn(onChange = () => location.reload()) {
  const state = $('token-state');
  const status = $('signin-status');
  const input = $('token');
  const show = () => {
    const who = signedIn();
    state.textContent = who ? `Signed in as user ${who.userId}${who.isAdmin ? ' (admin)' : ''}` : 'Sign in';
    $('token-clear').hidden = !who;
    $('nav-mine').hidden = !who;
    $('nav-moderation').hidden = !who?.isAdmin;
  };
  const signedInNow = (t) => {
    try {
      saveToken(t);
    } catch {
      status.textContent = 'This browser does not keep the sign-in (storage is off).';
      return;
    }
    $('signin').open = false;
    status.textContent = '';
    show();
    onChange();
  };

  if (meta('dev-sign-in') === 'on') {
    const form = $('dev-form');
    form.hidden = false;
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = { sub: Number($('dev-sub').value), admin: $('dev-admin').checked };
      if ($('dev-org').value) body.org = Number($('dev-org').value);
      const res = await api('/api/v1/dev/token', { method: 'POST', body });
      if (res.status !== 200) {
        status.textContent = errorText(res);
        return;
      }
      signedInNow(res.body.token);
    });
  }
  if (meta('oidc-issuer') && meta('oidc-client-id')) {
    const button = $('oidc-signin');
    button.hidden = false;
    button.addEventListener('click', () => {
      status.textContent = 'Going to the sign-in page…';
      signInWithProvider().catch((err) => (status.textContent = `Could not start the sign-in: ${err.message}`));
    });
  }
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    input.value = '';
    signedInNow(t);
  });
  $('token-clear').addEventListener('click', () => {
    forgetToken();
    show();
    onChange();
  });
  show();
}

/** Copies text to the clipboard and says so on the button for a moment. */
export async function copyText(text, button) {
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Select and copy by hand';
  }
  setTimeout(() => (button.textContent = label), 2000);
}

/** A date and time in the reader's locale. */
export const when = (iso) => new Date(iso).toLocaleString();

/** The value of a datetime-local input for an ISO time (local wall clock), or ''. */
export function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The poll id in /polls/:id/... and /embed/polls/:id, and the ?key= of a PRIVATE poll. */
export function pollFromPath() {
  const parts = location.pathname.split('/');
  const pollId = parts[1] === 'embed' ? parts[3] : parts[2];
  const key = new URLSearchParams(location.search).get('key');
  return { pollId, key, keyQuery: key ? `?key=${encodeURIComponent(key)}` : '' };
}

export const TYPE_LABELS = {
  SINGLE_CHOICE: 'Single choice',
  MULTIPLE_CHOICE: 'Multiple choice',
  RANKED: 'Ranked',
  RATING: 'Rating',
};

export const STATUS_LABELS = { DRAFT: 'Draft', ACTIVE: 'Open', CLOSED: 'Closed' };

/**
 * Asks before something that cannot be undone, in a modal <dialog> (focus is kept inside it and
 * Escape cancels). Resolves true when confirmed.
 */
export function confirmDialog({ title, text, confirm = 'Confirm', cancel = 'Cancel' }) {
  return new Promise((resolve) => {
    const yes = el('button', { type: 'button', className: 'danger' }, confirm);
    const no = el('button', { type: 'button', className: 'secondary' }, cancel);
    const heading = el('h2', { id: `dialog-${Date.now()}` }, title);
    const dialog = el('dialog', { className: 'confirm' }, heading, el('p', {}, text), el('div', { className: 'actions' }, no, yes));
    dialog.setAttribute('aria-labelledby', heading.id);
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    yes.addEventListener('click', () => done(true));
    no.addEventListener('click', () => done(false));
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}
