// wharf's web page: a hash-routed single page reading the JSON endpoints under /api/.
// Every piece of data reaches the DOM through textContent or attributes, never as HTML.
'use strict';

(() => {
  const REFRESH_MS = 10000;
  const SVG = 'http://www.w3.org/2000/svg';
  const state = { session: null, timer: null, seq: 0, renders: 0, range: 'hour' };
  const $ = (id) => document.getElementById(id);

  // ---- DOM helpers -------------------------------------------------------------------------

  // h('td', {class: 'num'}, 'text', node, ...): an element; strings become text nodes.
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, kids);
    return el;
  }

  function append(el, kids) {
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }

  function svg(tag, attrs) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    return el;
  }

  function table(heads, rows, emptyText) {
    const thead = h('thead', null, h('tr', null, heads.map(([label, cls]) => h('th', { class: cls }, label))));
    const body = h('tbody', null, rows);
    if (!rows.length) body.append(h('tr', null, h('td', { class: 'empty', colspan: heads.length }, emptyText)));
    return h('div', { class: 'table-wrap' }, h('table', null, thead, body));
  }

  // ---- formatting --------------------------------------------------------------------------

  function bytes(n) {
    if (n === null || n === undefined || !Number.isFinite(Number(n))) return '–';
    let v = Number(n);
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)) + ' ' + units[i];
  }

  function count(n) {
    return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US');
  }

  function pct(x) {
    return x === null || x === undefined ? '–' : (Number(x) * 100).toFixed(1) + ' %';
  }

  function when(t) {
    if (t === null || t === undefined || !Number.isFinite(Number(t))) return '–';
    const s = Math.round(Date.now() / 1000 - Number(t));
    if (s < 0) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' d ago';
  }

  function isoTime(t) {
    return t === null || t === undefined ? '' : new Date(Number(t) * 1000).toISOString().replace('.000Z', 'Z');
  }

  function timeCell(t) {
    return h('td', { class: 'nowrap', title: isoTime(t) || null }, when(t));
  }

  function duration(s) {
    s = Number(s) || 0;
    const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return d ? d + ' d ' + hr + ' h' : hr ? hr + ' h ' + m + ' min' : m + ' min';
  }

  function shortDigest(d) {
    const s = String(d || '');
    return s.startsWith('sha256:') ? s.slice(0, 19) : s;
  }

  function shortType(mt) {
    const s = String(mt || '');
    const known = {
      'application/vnd.oci.image.manifest.v1+json': 'OCI manifest',
      'application/vnd.oci.image.index.v1+json': 'OCI index',
      'application/vnd.docker.distribution.manifest.v2+json': 'Docker manifest v2',
      'application/vnd.docker.distribution.manifest.list.v2+json': 'Docker manifest list',
    };
    return known[s] || s || '–';
  }

  // ---- API ---------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, code) { super(message); this.status = status; this.code = code; }
  }

  async function api(path, opts) {
    const init = { method: (opts && opts.method) || 'GET', headers: { Accept: 'application/json' },
      credentials: 'same-origin', cache: 'no-store' };
    if (opts && opts.body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    if (init.method !== 'GET' && state.session && state.session.csrf) init.headers['X-CSRF-Token'] = state.session.csrf;
    const res = await fetch('/api/' + path, init);
    let data = null;
    if (res.status !== 204) {
      const text = await res.text();
      try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    }
    if (!res.ok) {
      const msg = data && typeof data.error === 'string' ? data.error : res.status + ' ' + res.statusText;
      throw new ApiError(res.status, msg, data && data.code);
    }
    return data;
  }

  function showError(err) {
    const b = $('banner');
    if (!err) { b.hidden = true; b.textContent = ''; return; }
    b.textContent = err.message || String(err);
    b.hidden = false;
  }

  // A 401 from any data endpoint means the session ended: back to the login form.
  function handleFailure(err) {
    if (err instanceof ApiError && err.status === 401 && state.session && state.session.auth_enabled) {
      state.session.authenticated = false;
      renderLogin('Your session has ended; please sign in again.');
      return;
    }
    showError(err);
  }

  // ---- session and login -------------------------------------------------------------------

  async function loadSession() {
    state.session = await api('session');
    return state.session;
  }

  function signedIn() {
    const s = state.session;
    return !!s && (!s.auth_enabled || s.authenticated);
  }

  function renderChrome() {
    const s = state.session;
    $('nav').hidden = !signedIn();
    $('who').hidden = !(signedIn() && s.auth_enabled);
    $('who-name').textContent = s && s.user ? s.user : '';
  }

  function renderLogin(message) {
    stopRefresh();
    state.seq++;
    renderChrome();
    showError(null);
    const err = h('p', { class: 'err', id: 'login-error', role: 'alert' }, message || '');
    const user = h('input', { name: 'username', id: 'login-user', autocomplete: 'username', required: true });
    const pass = h('input', { name: 'password', id: 'login-pass', type: 'password', autocomplete: 'current-password',
      required: true });
    const submit = h('button', { class: 'primary', type: 'submit', id: 'login-submit' }, 'Sign in');
    const form = h('form', { class: 'panel login', id: 'login-form' },
      h('h1', null, 'Sign in to wharf'),
      h('label', null, 'User', user), h('label', null, 'Password', pass), submit, err);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      err.textContent = '';
      try {
        await api('login', { method: 'POST', body: { username: user.value, password: pass.value } });
        await loadSession();
        route();
      } catch (e) {
        err.textContent = e.status === 401 ? 'Wrong user name or password.' : e.message;
        pass.value = '';
        pass.focus();
      } finally {
        submit.disabled = false;
      }
    });
    setMain('login', form);
    user.focus();
  }

  async function logout() {
    try {
      await api('logout', { method: 'POST' });
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) { showError(e); return; }
    }
    try { await loadSession(); } catch (e) { state.session = { auth_enabled: true, authenticated: false }; }
    location.hash = '#/';
    renderLogin('Signed out.');
  }

  // ---- page plumbing -----------------------------------------------------------------------

  // Replaces the page content; data-view tells tests (and people) which page is shown.
  function setMain(view, ...nodes) {
    const main = $('main');
    main.replaceChildren(...nodes.filter((n) => n instanceof Node));
    main.dataset.view = view;
    main.dataset.loaded = String(++state.renders);
  }

  function markNav(name) {
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.route === name);
  }

  function stopRefresh() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
  }

  // Calls fn every 10 s while the tab is visible (a hidden tab skips its turns).
  function autoRefresh(fn) {
    stopRefresh();
    state.timer = setInterval(() => { if (!document.hidden) fn(); }, REFRESH_MS);
    state.refreshFn = fn;
  }

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, '');
    const qi = raw.indexOf('?');
    const path = qi < 0 ? raw : raw.slice(0, qi);
    const params = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
    return { path, params };
  }

  async function route() {
    if (!state.session) {
      try { await loadSession(); } catch (e) { showError(e); return; }
    }
    if (!signedIn()) { renderLogin(); return; }
    renderChrome();
    showError(null);
    stopRefresh();
    const seq = ++state.seq;
    const { path, params } = parseHash();
    const stale = () => seq !== state.seq;
    try {
      if (path === '' || path === 'overview') await pageOverview(stale);
      else if (path === 'repos') await pageRepos(params, stale);
      else if (path.startsWith('repo/')) await pageRepo(decodeURIComponent(path.slice(5)), stale);
      else if (path === 'activity') await pageActivity(stale);
      else { markNav(''); setMain('notfound', h('h1', null, 'Not found'), h('p', null, h('a', { href: '#/' }, 'Overview'))); }
    } catch (e) {
      if (!stale()) handleFailure(e);
    }
  }

  // ---- overview ----------------------------------------------------------------------------

  function stat(label, value, sub, extra) {
    return h('div', { class: 'panel stat' }, h('div', { class: 'label' }, label),
      h('div', { class: 'value' }, value), sub ? h('div', { class: 'sub' }, sub) : null, extra || null);
  }

  function storeStat(store) {
    const max = store.maxsize;
    const bar = h('div', { class: 'bar', role: 'progressbar', 'aria-label': 'store size against maxsize' });
    const fill = h('span');
    bar.append(fill);
    let sub = count(store.blobs) + ' blobs · no size limit';
    if (max) {
      const frac = Math.min(1, Number(store.bytes) / Number(max));
      fill.style.width = (frac * 100).toFixed(1) + '%';
      bar.setAttribute('aria-valuenow', Math.round(frac * 100));
      bar.classList.toggle('full', frac > 0.9);
      sub = count(store.blobs) + ' blobs · ' + (frac * 100).toFixed(1) + ' % of ' + bytes(max);
    } else {
      fill.style.width = '0';
    }
    return stat('Store', bytes(store.bytes), sub, bar);
  }

  // A line of the hit ratio per bucket (gaps where nothing was served).
  function ratioChart(buckets) {
    const W = 300, H = 100, n = Math.max(buckets.length, 1);
    const el = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img',
      'aria-label': 'hit ratio over time' });
    el.append(svg('line', { class: 'axis', x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }));
    el.append(svg('line', { class: 'axis', x1: 0, y1: H / 2, x2: W, y2: H / 2, 'stroke-dasharray': '3 3' }));
    const served = (b) => b && Number(b.hits) + Number(b.misses) > 0;
    let d = '', dots = '';
    buckets.forEach((b, i) => {
      if (!served(b)) return;
      const x = ((i + 0.5) / n) * W, y = H - 3 - (Number(b.hits) / (Number(b.hits) + Number(b.misses))) * (H - 6);
      const xy = x.toFixed(1) + ' ' + y.toFixed(1);
      d += (served(buckets[i - 1]) ? 'L' : 'M') + xy;
      if (!served(buckets[i - 1]) && !served(buckets[i + 1])) dots += 'M' + xy + 'l0.01 0'; // a lone point
    });
    const line = { 'vector-effect': 'non-scaling-stroke', 'stroke-linecap': 'round', 'stroke-linejoin': 'round' };
    if (d) el.append(svg('path', { class: 'ratio', d, ...line }));
    if (dots) el.append(svg('path', { class: 'dot', d: dots, ...line }));
    return el;
  }

  // Stacked bars of bytes served from the cache and fetched upstream per bucket.
  function bytesChart(buckets) {
    const W = 300, H = 100, n = Math.max(buckets.length, 1);
    const max = Math.max(1, ...buckets.map((b) => Number(b.bytes_cache) + Number(b.bytes_upstream)));
    const el = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img',
      'aria-label': 'bytes from cache and upstream over time' });
    el.append(svg('line', { class: 'axis', x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }));
    const bw = W / n;
    buckets.forEach((b, i) => {
      const c = (Number(b.bytes_cache) / max) * (H - 2), u = (Number(b.bytes_upstream) / max) * (H - 2);
      const x = i * bw + bw * 0.1, w = Math.max(bw * 0.8, 0.5);
      if (c > 0) el.append(svg('rect', { class: 'b-cache', x, y: H - c, width: w, height: c }));
      if (u > 0) el.append(svg('rect', { class: 'b-upstream', x, y: H - c - u, width: w, height: u }));
    });
    return el;
  }

  function chartsPanel(ov, rerender) {
    const buckets = (ov.traffic && ov.traffic[state.range]) || [];
    const sum = (k) => buckets.reduce((a, b) => a + Number(b[k] || 0), 0);
    const seg = h('div', { class: 'seg', role: 'group', 'aria-label': 'time range' },
      ['hour', 'day'].map((r) => h('button', { type: 'button', class: state.range === r ? 'on' : '', 'data-range': r,
        onclick: () => { state.range = r; rerender(); } }, r === 'hour' ? 'Last hour' : 'Last day')));
    const span = state.range === 'hour' ? 'last hour, per minute' : 'last day, per 15 minutes';
    return h('div', { class: 'panel', id: 'traffic' },
      h('div', { class: 'head' }, h('h2', null, 'Mirror traffic'), seg),
      h('div', { class: 'charts' },
        h('div', { class: 'chart' }, h('h2', { class: 'muted' }, 'Hit ratio ', pct(ov.hit_ratio && ov.hit_ratio[state.range])),
          ratioChart(buckets),
          h('div', { class: 'legend' }, h('span', null, h('span', { class: 'swatch ratio' }), 'hits / (hits + misses), ' + span),
            h('span', null, count(sum('hits')) + ' hits · ' + count(sum('misses')) + ' misses'))),
        h('div', { class: 'chart' }, h('h2', { class: 'muted' }, 'Bytes served'),
          bytesChart(buckets),
          h('div', { class: 'legend' },
            h('span', null, h('span', { class: 'swatch cache' }), 'from cache ' + bytes(sum('bytes_cache'))),
            h('span', null, h('span', { class: 'swatch upstream' }), 'from upstream ' + bytes(sum('bytes_upstream')))))));
  }

  function upstreamsPanel(ups) {
    const rows = (ups || []).map((u) => {
      const limit = u.ratelimit_remaining === null || u.ratelimit_remaining === undefined ? '–'
        : count(u.ratelimit_remaining) + (u.ratelimit_limit ? ' / ' + count(u.ratelimit_limit) : '');
      const st = String(u.state || 'unknown');
      return h('tr', null,
        h('td', null, h('strong', null, u.name), h('div', { class: 'muted mono' }, u.url)),
        h('td', null, h('span', { class: 'badge ' + st.replace(/[^a-z_]/g, '') }, st.replace('_', ' '))),
        h('td', null, u.last_error ? h('div', { class: 'err' }, u.last_error) : h('span', { class: 'muted' }, 'none'),
          u.last_error_at ? h('div', { class: 'muted', title: isoTime(u.last_error_at) }, when(u.last_error_at)) : null),
        h('td', { class: 'num' }, limit));
    });
    return h('div', { class: 'panel', id: 'upstreams' }, h('h2', null, 'Upstreams'),
      table([['Upstream'], ['State'], ['Last error'], ['Pulls left', 'num']], rows, 'No upstreams configured.'));
  }

  async function pageOverview(stale) {
    markNav('overview');
    const draw = (ov) => {
      const totalHour = (ov.traffic && ov.traffic.hour || []).reduce((a, b) => a + Number(b.hits || 0), 0);
      setMain('overview',
        h('h1', null, 'Overview'),
        h('div', { class: 'grid' },
          storeStat(ov.store || {}),
          stat('Hit ratio (hour)', pct(ov.hit_ratio && ov.hit_ratio.hour), count(totalHour) + ' hits · day ' +
            pct(ov.hit_ratio && ov.hit_ratio.day)),
          stat('Uploads in progress', count(ov.uploads_in_progress)),
          stat('Fetches in flight', count(ov.fetches_in_flight)),
          stat('Up', duration(ov.uptime_s), 'wharf ' + (ov.version || ''))),
        chartsPanel(ov, () => draw(ov)),
        upstreamsPanel(ov.upstreams));
      $('main').dataset.hits = String(totalHour);
    };
    const ov = await api('overview');
    if (stale()) return;
    draw(ov);
    autoRefresh(async () => {
      try {
        const next = await api('overview');
        if (!stale()) draw(next);
      } catch (e) { if (!stale()) handleFailure(e); }
    });
  }

  // ---- repositories ------------------------------------------------------------------------

  function reposHash(q, kind, page) {
    const p = new URLSearchParams();
    if (q) p.set('q', q);
    if (kind && kind !== 'all') p.set('kind', kind);
    if (page > 1) p.set('page', String(page));
    const s = p.toString();
    return '#/repos' + (s ? '?' + s : '');
  }

  async function pageRepos(params, stale) {
    markNav('repos');
    const q = params.get('q') || '';
    const kind = ['local', 'mirror'].includes(params.get('kind')) ? params.get('kind') : 'all';
    const page = Math.max(1, parseInt(params.get('page') || '1', 10) || 1);
    const perPage = 50;
    const query = new URLSearchParams({ q, kind, page: String(page), per_page: String(perPage) });
    const data = await api('repositories?' + query.toString());
    if (stale()) return;

    const search = h('input', { type: 'search', id: 'repo-search', placeholder: 'Search repositories',
      'aria-label': 'Search repositories', value: q });
    const kindSel = h('select', { id: 'repo-kind', 'aria-label': 'Kind' },
      [['all', 'All'], ['local', 'Local'], ['mirror', 'Mirrored']].map(([v, label]) =>
        h('option', { value: v, selected: v === kind }, label)));
    let debounce = null;
    const go = () => { location.hash = reposHash(search.value.trim(), kindSel.value, 1); };
    search.addEventListener('input', () => { clearTimeout(debounce); debounce = setTimeout(go, 300); });
    search.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { clearTimeout(debounce); go(); } });
    kindSel.addEventListener('change', go);

    const rows = (data.items || []).map((r) => h('tr', { 'data-repo': r.name },
      h('td', null, h('a', { href: '#/repo/' + encodeURIComponent(r.name) }, r.name)),
      h('td', null, h('span', { class: 'badge ' + (r.kind === 'mirror' ? 'mirror' : 'local') }, r.kind),
        r.upstream ? h('span', { class: 'muted' }, ' ' + r.upstream) : null),
      h('td', { class: 'num' }, count(r.tags)),
      h('td', { class: 'num' }, bytes(r.size)),
      timeCell(r.updated)));
    const total = Number(data.total) || 0;
    const pages = Math.max(1, Math.ceil(total / (Number(data.per_page) || perPage)));
    const pager = h('div', { class: 'pager' },
      h('span', { class: 'muted', id: 'repo-total' }, count(total) + ' repositories · page ' + page + ' of ' + pages),
      h('button', { type: 'button', id: 'page-prev', disabled: page <= 1,
        onclick: () => { location.hash = reposHash(q, kind, page - 1); } }, '‹ Previous'),
      h('button', { type: 'button', id: 'page-next', disabled: page >= pages,
        onclick: () => { location.hash = reposHash(q, kind, page + 1); } }, 'Next ›'));
    setMain('repos', h('h1', null, 'Repositories'),
      h('div', { class: 'panel' }, h('div', { class: 'toolbar' }, search, kindSel),
        h('div', { class: 'repo-list' }, table([['Name'], ['Kind'], ['Tags', 'num'], ['Size', 'num'], ['Updated']], rows,
          q ? 'No repository matches.' : 'No repositories yet.')),
        pager));
    if (q) { search.focus(); search.setSelectionRange(q.length, q.length); }
  }

  // ---- one repository ----------------------------------------------------------------------

  async function copyText(text, button) {
    let ok = false;
    try {
      if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); ok = true; }
    } catch (e) { ok = false; }
    if (!ok) {
      const ta = h('textarea', { readonly: true });
      ta.value = text;
      ta.style.position = 'fixed';
      ta.style.opacity = '0';
      document.body.append(ta);
      ta.select();
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      ta.remove();
    }
    button.textContent = ok ? 'Copied' : 'Select and copy';
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  }

  function pullLine(text, id) {
    const code = h('code', { id }, text);
    return h('div', { class: 'pull' }, code,
      h('button', { type: 'button', class: 'small', onclick: (ev) => copyText(text, ev.currentTarget) }, 'Copy'));
  }

  function confirmDialog(title, text, okLabel) {
    const dlg = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okLabel;
    dlg.returnValue = '';
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
      dlg.showModal();
    });
  }

  async function action(kind, name, tag) {
    const what = name + ':' + tag;
    const yes = kind === 'delete'
      ? await confirmDialog('Delete tag', 'Delete the tag ' + what + '? Clients can no longer pull it by this tag.', 'Delete tag')
      : await confirmDialog('Evict from cache', 'Evict ' + what + ' from the cache? The next pull fetches it upstream again.', 'Evict');
    if (!yes) return;
    try {
      await api(kind === 'delete' ? 'delete-tag' : 'evict', { method: 'POST', body: { name, tag } });
      route();
    } catch (e) { handleFailure(e); }
  }

  async function pageRepo(name, stale) {
    markNav('repos');
    let repo;
    try {
      repo = await api('repository?name=' + encodeURIComponent(name));
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        if (!stale()) setMain('repo', h('h1', null, name), h('p', { class: 'muted' }, 'No such repository.'));
        return;
      }
      throw e;
    }
    if (stale()) return;
    const s = state.session;
    const mayDelete = typeof repo.can_delete === 'boolean' ? repo.can_delete : !!(s.can_delete && s.delete_enabled !== false);
    const host = s.registry_host || location.host;
    const refs = repo.referrers || [];
    const tagged = new Set((repo.tags || []).map((t) => t.digest));
    const rows = [];
    for (const t of repo.tags || []) {
      const buttons = mayDelete ? h('td', { class: 'nowrap' },
        h('button', { type: 'button', class: 'small danger', 'data-action': 'delete', 'data-tag': t.tag,
          onclick: () => action('delete', repo.name, t.tag) }, 'Delete'),
        repo.kind === 'mirror' ? h('button', { type: 'button', class: 'small', 'data-action': 'evict', 'data-tag': t.tag,
          onclick: () => action('evict', repo.name, t.tag) }, 'Evict') : null) : null;
      rows.push(h('tr', { class: 'tag', 'data-tag': t.tag },
        h('td', null, h('strong', { class: 'tag-name' }, t.tag)),
        h('td', { class: 'mono', title: t.digest }, shortDigest(t.digest)),
        h('td', { title: t.media_type }, shortType(t.media_type)),
        h('td', null, (t.platforms || []).join(', ') || h('span', { class: 'muted' }, '–')),
        h('td', { class: 'num' }, bytes(t.size)),
        timeCell(t.updated),
        timeCell(t.last_pull),
        h('td', null, h('button', { type: 'button', class: 'small', title: 'Copy the docker pull line',
          onclick: (ev) => copyText('docker pull ' + host + '/' + repo.name + ':' + t.tag, ev.currentTarget) }, 'Copy')),
        buttons));
      for (const r of refs.filter((x) => x.subject === t.digest)) rows.push(referrerRow(r, mayDelete));
    }
    const heads = [['Tag'], ['Digest'], ['Type'], ['Platforms'], ['Size', 'num'], ['Pushed / cached'], ['Last pull'], ['Pull']];
    if (mayDelete) heads.push(['']);
    const orphans = refs.filter((r) => !tagged.has(r.subject));
    const pull = repo.pull || {};
    const firstTag = (repo.tags || [])[0];
    const fallback = (cmd) => cmd + ' pull ' + host + '/' + repo.name + (firstTag ? ':' + firstTag.tag : '');
    setMain('repo',
      h('h1', { id: 'repo-name' }, repo.name),
      h('div', { class: 'meta' }, h('span', { class: 'badge ' + (repo.kind === 'mirror' ? 'mirror' : 'local') }, repo.kind),
        repo.upstream ? h('span', null, 'mirrored from ' + repo.upstream) : null,
        h('span', null, count((repo.tags || []).length) + ' tags')),
      h('div', { class: 'panel' }, h('h2', null, 'Pull'),
        pullLine(pull.docker || fallback('docker'), 'pull-docker'),
        pullLine(pull.podman || fallback('podman'), 'pull-podman')),
      h('div', { class: 'panel' }, h('h2', null, 'Tags'), h('div', { class: 'tag-list' }, table(heads, rows, 'No tags.'))),
      orphans.length ? h('div', { class: 'panel' }, h('h2', null, 'Referrers of untagged manifests'),
        table([['Subject'], ['Artifact'], ['Digest'], ['Size', 'num']], orphans.map((r) => h('tr', null,
          h('td', { class: 'mono', title: r.subject }, shortDigest(r.subject)),
          h('td', null, r.artifact_type || shortType(r.media_type)),
          h('td', { class: 'mono', title: r.digest }, shortDigest(r.digest)),
          h('td', { class: 'num' }, bytes(r.size)))), '')) : null);
  }

  function referrerRow(r, mayDelete) {
    const cells = [
      h('td', null, '↳ ', r.artifact_type || 'referrer'),
      h('td', { class: 'mono', title: r.digest }, shortDigest(r.digest)),
      h('td', { title: r.media_type }, shortType(r.media_type)),
      h('td'), h('td', { class: 'num' }, bytes(r.size)), h('td'), h('td'), h('td')];
    if (mayDelete) cells.push(h('td'));
    return h('tr', { class: 'ref' }, cells);
  }

  // ---- activity ----------------------------------------------------------------------------

  async function pageActivity(stale) {
    markNav('activity');
    const draw = (data) => {
      const rows = (data.items || []).map((a) => h('tr', { class: 'event ' + String(a.event || '') },
        timeCell(a.time),
        h('td', null, h('span', { class: 'badge ' + (a.event === 'denied' ? 'down' : a.event === 'delete' ? 'backing_off' : '') },
          a.event)),
        h('td', null, a.user || '–'),
        h('td', null, a.repo ? h('a', { href: '#/repo/' + encodeURIComponent(a.repo) }, a.repo) : '–',
          a.ref ? h('span', { class: 'muted', title: a.ref }, ' ' + shortDigest(a.ref)) : null),
        h('td', { class: 'mono hide-sm' }, a.remote || ''),
        h('td', { class: 'hide-sm detail' }, a.detail || '')));
      setMain('activity', h('h1', null, 'Activity'),
        h('div', { class: 'panel' }, table([['When'], ['Event'], ['User'], ['Repository'], ['From', 'hide-sm'],
          ['Detail', 'hide-sm']], rows, 'Nothing yet.')));
    };
    const data = await api('activity?limit=100');
    if (stale()) return;
    draw(data);
    autoRefresh(async () => {
      try {
        const next = await api('activity?limit=100');
        if (!stale()) draw(next);
      } catch (e) { if (!stale()) handleFailure(e); }
    });
  }

  // ---- start -------------------------------------------------------------------------------

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.timer && state.refreshFn) state.refreshFn();
  });
  window.addEventListener('hashchange', route);
  document.addEventListener('DOMContentLoaded', () => {
    $('logout').addEventListener('click', logout);
    route();
  });
})();
