// Shared by the pages: API calls, the optional sign-in token, safe element building.
// User-provided text only ever goes in through text nodes (el), never as HTML.

const TOKEN_KEY = 'polls.token';

/** The saved bearer token, or '' (storage can be off in private windows). */
export function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
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
    return { status: 0, body: { error: { code: 'NETWORK', message: 'Could not reach the server. Check your connection and try again.' } }, headers: new Headers() };
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
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// The server's own message is kept where it says more than a fixed sentence could
// (which field, which rule, why the poll is not open).
const MESSAGES = {
  VALIDATION_ERROR: null,
  INVALID_OPTION: 'That option is not part of this poll any more. Reload the page.',
  INVALID_SELECTION: null,
  AUTH_REQUIRED: 'Sign in to do this: paste a token under "Sign in" at the top.',
  INVALID_TOKEN: 'Your sign-in token is malformed, badly signed or expired. Forget it or paste a new one.',
  FORBIDDEN: 'You are not allowed to do this.',
  RESULTS_HIDDEN: 'Results are hidden until the poll closes.',
  POLL_NOT_FOUND: 'No such poll (or it is private and the link lacks its key).',
  POLL_NOT_ACTIVE: null,
  ALREADY_VOTED: 'You have already voted in this poll.',
  POLL_EXPIRED: 'This poll has ended.',
  PAYLOAD_TOO_LARGE: 'That vote is too large.',
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

/** The `sub` of a JWT, only to show who is signed in (the server is what checks the token). */
function subjectOf(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part)).sub;
  } catch {
    return undefined;
  }
}

/** Wires the "Sign in" box; `onChange` runs after the token was saved or forgotten. */
export function setupSignIn(onChange) {
  const state = document.getElementById('token-state');
  const input = document.getElementById('token');
  const show = () => {
    const t = token();
    const sub = t && subjectOf(t);
    state.textContent = t ? `Signed in${sub !== undefined ? ` as user ${sub}` : ''}` : 'Sign in';
  };
  document.getElementById('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    try {
      localStorage.setItem(TOKEN_KEY, t);
    } catch {
      state.textContent = 'This browser does not keep the token (storage is off).';
      return;
    }
    input.value = '';
    show();
    onChange();
  });
  document.getElementById('token-clear').addEventListener('click', () => {
    try {
      localStorage.removeItem(TOKEN_KEY);
    } catch {
      // nothing was kept
    }
    show();
    onChange();
  });
  show();
}

export const TYPE_LABELS = {
  SINGLE_CHOICE: 'Single choice',
  MULTIPLE_CHOICE: 'Multiple choice',
  RANKED: 'Ranked',
  RATING: 'Rating',
};
