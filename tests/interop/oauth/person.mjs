#!/usr/bin/env node
// The "person" of the OAuth and approval interop tests: a headless Chromium, driven through
// chromedriver's W3C WebDriver HTTP API (plain fetch, no npm package), that does what a person
// does in a real browser — signs in, looks at the consent page, ticks abilities, clicks Allow (or
// Deny), revokes a connected app, and approves (or denies) a held call. Node 22, no dependencies; usable from any harness as a command:
//
//   node person.mjs authorize --url <authorization URL> [--ability NAME]... [--deny]
//                             [--callback <prefix>]        # default: the URL's redirect_uri
//   node person.mjs revoke --base <origin> --client-name <name>
//   node person.mjs approve --url <approval URL> [--expect TEXT]... [--deny]
//
// Credentials come from the environment (never argv, which `ps` shows): MP_PERSON_EMAIL,
// MP_PERSON_PASSWORD. Optional: MP_PERSON_ABILITIES (comma-separated, added to --ability),
// MP_PERSON_LOG (a file each result is appended to as one JSON line — for callers that cannot
// read our stdout, like mcp-remote's BROWSER), CHROMEDRIVER (default /usr/bin/chromedriver),
// CHROMIUM (default /usr/bin/chromium if present), MP_PERSON_TIMEOUT_MS (default 30000).
//
// `authorize` prints one JSON line: {"ok":true,"callback":"<the URL the browser was sent to>",
// "consent":{"client":…, "team":…, "checked":[…], "ticked":[…]}} once the browser has arrived at
// the callback prefix (the client's own loopback server takes the code from there). `revoke`
// prints {"ok":true,"revoked":"<grant id>","client":…}. `approve` signs in, opens a held call's
// page (/settings/approvals/<id>), checks it shows each --expect text (e.g. the operation,
// kick_member), clicks #approve (or #deny) and waits until #approval-status reads granted (or
// denied): {"ok":true,"status":"granted","approval_id":"<id>"}. Any failure prints {"ok":false,"error":…}
// with what the page showed, and exits 1. chromedriver, Chromium and the profile directory are
// always removed on exit.

import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
const TIMEOUT_MS = Number(process.env.MP_PERSON_TIMEOUT_MS || 30000);

function parseArgs(argv) {
    const [mode, ...rest] = argv;
    const opts = { mode, abilities: [], expect: [], deny: false };
    for (let i = 0; i < rest.length; i++) {
        const a = rest[i];
        const next = () => {
            if (i + 1 >= rest.length) throw new Error(`${a} needs a value`);
            return rest[++i];
        };
        if (a === '--url') opts.url = next();
        else if (a === '--callback') opts.callback = next();
        else if (a === '--ability') opts.abilities.push(next());
        else if (a === '--deny') opts.deny = true;
        else if (a === '--base') opts.base = next();
        else if (a === '--client-name') opts.clientName = next();
        else if (a === '--expect') opts.expect.push(next());
        else throw new Error(`unknown argument ${a}`);
    }
    for (const a of (process.env.MP_PERSON_ABILITIES || '').split(',')) if (a.trim()) opts.abilities.push(a.trim());
    return opts;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
    return new Promise((resolve, reject) => {
        const s = createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

class Browser {
    static async start() {
        const driverPath = process.env.CHROMEDRIVER || '/usr/bin/chromedriver';
        if (!existsSync(driverPath)) throw new Error(`no chromedriver at ${driverPath} (apt-get install chromium chromium-driver)`);
        const b = new Browser();
        // Everything Chromium writes goes under one directory removed on exit: the profile and
        // its temporary files (TMPDIR: else /tmp/org.chromium.Chromium.* stay behind).
        b.profile = mkdtempSync(join(tmpdir(), 'memberpass-person-'));
        const tmp = join(b.profile, 'tmp');
        mkdirSync(tmp);
        for (let attempt = 0; attempt < 5; attempt++) {
            const port = await freePort();
            // A process group of its own: chromedriver and every Chromium it starts die together.
            b.driver = spawn(driverPath, [`--port=${port}`], { stdio: 'ignore', detached: true, env: { ...process.env, TMPDIR: tmp } });
            b.base = `http://127.0.0.1:${port}`;
            const until = Date.now() + 10000;
            let up = false;
            while (Date.now() < until && b.driver.exitCode === null) {
                try {
                    const r = await fetch(`${b.base}/status`);
                    if ((await r.json()).value?.ready) { up = true; break; }
                } catch { /* not listening yet */ }
                await sleep(50);
            }
            if (up) break;
            b.killDriver();
            b.driver = undefined;
        }
        if (!b.driver) throw new Error('chromedriver did not start on five free ports');
        const chromeOptions = {
            args: ['--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run',
                '--lang=en-US', '--window-size=1280,900', `--user-data-dir=${join(b.profile, 'data')}`],
        };
        const chromium = process.env.CHROMIUM || (existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : undefined);
        if (chromium) chromeOptions.binary = chromium;
        const s = await b.cmd('POST', '/session', {
            capabilities: { alwaysMatch: { browserName: 'chrome', 'goog:chromeOptions': chromeOptions, pageLoadStrategy: 'normal' } },
        });
        b.session = s.sessionId;
        await b.cmd('POST', `/session/${b.session}/timeouts`, { pageLoad: TIMEOUT_MS, implicit: 0, script: 10000 });
        return b;
    }

    async cmd(method, path, body) {
        const r = await fetch(`${this.base}${path}`, {
            method,
            headers: method === 'POST' ? { 'content-type': 'application/json' } : {},
            body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined,
        });
        const j = await r.json().catch(() => ({}));
        if (!r.ok) throw new Error(`WebDriver ${method} ${path.replace(/\/session\/[^/]+/, '')}: ${r.status} ${j.value?.error ?? ''} ${j.value?.message?.split('\n')[0] ?? ''}`);
        return j.value;
    }

    s(path) { return `/session/${this.session}${path}`; }
    goto(url) { return this.cmd('POST', this.s('/url'), { url }); }
    url() { return this.cmd('GET', this.s('/url')); }
    js(script, ...args) { return this.cmd('POST', this.s('/execute/sync'), { script, args }); }
    async find(css) {
        const found = await this.cmd('POST', this.s('/elements'), { using: 'css selector', value: css });
        return found.map((e) => e[ELEMENT]);
    }
    click(el) { return this.cmd('POST', this.s(`/element/${el}/click`)); }
    async type(el, text) {
        await this.cmd('POST', this.s(`/element/${el}/clear`));
        await this.cmd('POST', this.s(`/element/${el}/value`), { text });
    }
    async pageText() {
        try { return String(await this.js('return document.body ? document.body.innerText : ""')).replace(/\s+/g, ' ').slice(0, 600); }
        catch (e) { return `<unreadable: ${e.message}>`; }
    }

    killDriver(signal = 'SIGKILL') {
        if (this.driver?.pid) {
            try { process.kill(-this.driver.pid, signal); } catch { /* gone */ }
        }
    }

    async close() {
        if (this.session) {
            try { await this.cmd('DELETE', this.s('')); } catch { /* the group kill below ends it */ }
        }
        // Let Chromium finish quitting (it removes its temporary directories), then end the group
        // (chromedriver and any Chromium process left) cleanly, then make sure.
        for (let i = 0; i < 40 && chromiumsOf(this.driver?.pid).length; i++) await sleep(50);
        this.killDriver('SIGTERM');
        for (let i = 0; i < 30 && this.driver && this.driver.exitCode === null && this.driver.signalCode === null; i++) await sleep(50);
        await sleep(200);
        this.killDriver('SIGKILL');
        if (this.profile) {
            for (let i = 0; i < 20; i++) {
                try { rmSync(this.profile, { recursive: true, force: true }); break; } catch { await sleep(100); }
            }
        }
    }
}

/** The pids of the processes in process group `pgid` other than its leader (chromedriver). */
function chromiumsOf(pgid) {
    if (!pgid) return [];
    const out = [];
    for (const d of readdirSync('/proc')) {
        if (!/^\d+$/.test(d) || Number(d) === pgid) continue;
        try {
            const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
            const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(d));
        } catch { /* gone */ }
    }
    return out;
}

function creds() {
    const email = process.env.MP_PERSON_EMAIL, password = process.env.MP_PERSON_PASSWORD;
    if (!email || !password) throw new Error('MP_PERSON_EMAIL and MP_PERSON_PASSWORD must be set');
    return { email, password };
}

async function signIn(b) {
    const { email, password } = creds();
    const [emailField] = await b.find('form[action="/login"] input[name="email"]');
    const [passwordField] = await b.find('form[action="/login"] input[name="password"]');
    const [submit] = await b.find('form[action="/login"] button[type="submit"], form[action="/login"] input[type="submit"]');
    if (!emailField || !passwordField || !submit) throw new Error('the sign-in form lacks email, password or its submit button');
    await b.type(emailField, email);
    await b.type(passwordField, password);
    await b.click(submit);
}

// Wait until the page is no longer at `before` (a click that submits a form).
async function waitLeaving(b, before) {
    const until = Date.now() + TIMEOUT_MS;
    while (Date.now() < until) {
        if ((await b.url()) !== before) return;
        await sleep(50);
    }
}

async function authorize(b, opts) {
    if (!opts.url) throw new Error('authorize needs --url');
    const callback = opts.callback || new URL(opts.url).searchParams.get('redirect_uri');
    if (!callback) throw new Error('no --callback and the URL has no redirect_uri');
    const result = { ok: true, consent: null, signedIn: false };
    await b.goto(opts.url);
    const until = Date.now() + TIMEOUT_MS;
    let loginsTried = 0;
    while (Date.now() < until) {
        const here = await b.url();
        if (here.startsWith(callback)) {
            result.callback = here;
            return result;
        }
        if ((await b.find('form[action="/login"]')).length) {
            if (loginsTried++ > 0) throw new Error(`sign-in refused: ${await b.pageText()}`);
            await signIn(b);
            result.signedIn = true;
            await waitLeaving(b, here);
            continue;
        }
        if ((await b.find('form[action="/authorize"] #allow')).length && !result.consent) {
            // What the person sees, for the caller's checks.
            result.consent = await b.js(`
                const f = document.querySelector('form[action="/authorize"]');
                const team = f.querySelector('select[name="team"]');
                return {
                    text: document.body.innerText.replace(/\\s+/g, ' ').slice(0, 2000),
                    team: team ? team.value : null,
                    teams: team ? [...team.options].map(o => o.value) : [],
                    checked: [...f.querySelectorAll('input[name="ability"]')].filter(i => i.checked).map(i => i.value),
                    offered: [...f.querySelectorAll('input[name="ability"]')].map(i => i.value),
                    hidden: [...f.querySelectorAll('input[type="hidden"]')].map(i => i.name),
                };`);
            result.consent.ticked = [];
            for (const ability of opts.abilities) {
                const [box] = await b.find(`form[action="/authorize"] input[name="ability"][value="${CSS.escape(ability)}"]`);
                if (!box) throw new Error(`the consent page offers no ability ${ability} (offered: ${result.consent.offered.join(' ')})`);
                const checked = await b.js('return arguments[0].checked', { [ELEMENT]: box });
                if (!checked) await b.click(box);
                result.consent.ticked.push(ability);
            }
            const [button] = await b.find(opts.deny ? 'form[action="/authorize"] #deny' : 'form[action="/authorize"] #allow');
            if (!button) throw new Error(`the consent page has no #${opts.deny ? 'deny' : 'allow'} button`);
            await b.click(button);
            await waitLeaving(b, here);
            continue;
        }
        await sleep(100);
    }
    throw new Error(`the browser did not reach ${callback} within ${TIMEOUT_MS} ms; it is at ${await b.url()}: ${await b.pageText()}`);
}

// Sign in on the origin's /login page, which then sends the browser to `next` (a path).
async function signInAt(b, base, next) {
    const login = `${base}/login${next ? `?next=${encodeURIComponent(next)}` : ''}`;
    await b.goto(login);
    await signIn(b);
    await waitLeaving(b, login);
    if ((await b.find('form[action="/login"]')).length) throw new Error(`sign-in refused: ${await b.pageText()}`);
}

async function revoke(b, opts) {
    if (!opts.base || !opts.clientName) throw new Error('revoke needs --base and --client-name');
    const base = opts.base.replace(/\/$/, '');
    await signInAt(b, base);
    await b.goto(`${base}/settings/apps`);
    // The revoke form of the one connected app whose entry names the client.
    const pick = `
        const name = arguments[0];
        const forms = [...document.querySelectorAll('form[method="post" i]')]
            .filter(f => /^\\/settings\\/apps\\/[^/]+\\/revoke$/.test(new URL(f.action, location.href).pathname));
        const entry = f => f.closest('tr, li, article, section, .card, div') || f.parentElement;
        const mine = forms.filter(f => { let e = f; while (e && e !== document.body) { if (e.innerText.includes(name) && e.querySelectorAll('form[action*="/revoke"]').length === 1) return true; e = e.parentElement; } return false; });
        return { all: forms.length, ids: mine.map(f => new URL(f.action, location.href).pathname.split('/')[3]) };`;
    const found = await b.js(pick, opts.clientName);
    if (found.ids.length !== 1) {
        throw new Error(`expected one connected app named ${opts.clientName} at /settings/apps, found ${found.ids.length} (of ${found.all} revoke forms): ${await b.pageText()}`);
    }
    const id = found.ids[0];
    const [button] = await b.find(`form[action$="/settings/apps/${CSS.escape(id)}/revoke"] button, form[action$="/settings/apps/${CSS.escape(id)}/revoke"] input[type="submit"]`);
    if (!button) throw new Error(`the revoke form of ${id} has no button`);
    await b.click(button);
    // The answer redirects back to /settings/apps (same URL): wait until the page no longer
    // offers this grant's form (the DOM may be mid-navigation: retry on script errors).
    const until = Date.now() + TIMEOUT_MS;
    while (Date.now() < until) {
        const now = await b.js(pick, opts.clientName).catch(() => null);
        if (now && !now.ids.includes(id)) break;
        await sleep(100);
    }
    // After the answer (a redirect back, typically), the app must no longer be offered for revocation.
    await b.goto(`${base}/settings/apps`);
    const after = await b.js(pick, opts.clientName);
    if (after.ids.includes(id)) throw new Error(`grant ${id} is still listed as revocable after clicking revoke: ${await b.pageText()}`);
    return { ok: true, revoked: id, client: opts.clientName };
}

async function approve(b, opts) {
    if (!opts.url) throw new Error('approve needs --url');
    const page = new URL(opts.url);
    const id = page.pathname.match(/^\/settings\/approvals\/([^/]+)$/)?.[1];
    if (!id) throw new Error(`not an approval page (<origin>/settings/approvals/<id>): ${opts.url}`);
    const button = opts.deny ? '#deny' : '#approve';
    const want = opts.deny ? 'denied' : 'granted';
    await signInAt(b, page.origin, page.pathname);
    if ((await b.url()) !== page.href) await b.goto(page.href);
    // null: no such element; undefined: the page is between documents.
    const status = () => b.js(`const e = document.getElementById('approval-status'); return e ? e.textContent.trim() : null`)
        .catch(() => undefined);
    const before = await status();
    if (before !== 'pending') throw new Error(`#approval-status reads ${JSON.stringify(before)}, not pending: ${await b.pageText()}`);
    const text = String(await b.js('return document.body.innerText'));
    const missing = opts.expect.filter((t) => !text.includes(t));
    if (missing.length) throw new Error(`the approval page does not show ${missing.map((t) => JSON.stringify(t)).join(', ')}: ${await b.pageText()}`);
    const [el] = await b.find(`form[method="post" i] ${button}`);
    if (!el) throw new Error(`the approval page has no ${button} button in a POST form: ${await b.pageText()}`);
    await b.click(el);
    // The answer shows the request again (typically a redirect back to it): wait for the new
    // status; should it land on another page, look at the request's page again.
    const until = Date.now() + TIMEOUT_MS;
    while (Date.now() < until) {
        const now = await status();
        if (now === want) return { ok: true, status: now, approval_id: id };
        if (now && now !== 'pending') throw new Error(`after ${button}, #approval-status reads ${JSON.stringify(now)}, not ${want}: ${await b.pageText()}`);
        if (now === null && (await b.url().catch(() => page.href)) !== page.href) await b.goto(page.href);
        await sleep(100);
    }
    throw new Error(`#approval-status did not read ${want} within ${TIMEOUT_MS} ms after ${button}: ${await b.pageText()}`);
}

// CSS.escape is a browser API; a small equivalent for the values used here (ability names, ids).
const CSS = { escape: (s) => String(s).replace(/[^a-zA-Z0-9_\-:.]/g, (c) => `\\${c}`).replace(/[:.]/g, (c) => `\\${c}`) };

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    let b;
    let result;
    try {
        const modes = { authorize, revoke, approve };
        if (!Object.hasOwn(modes, opts.mode)) {
            throw new Error('usage: person.mjs authorize --url URL | revoke --base ORIGIN --client-name NAME | approve --url URL [--expect TEXT]... [--deny]');
        }
        b = await Browser.start();
        result = await modes[opts.mode](b, opts);
    } catch (e) {
        result = { ok: false, mode: opts.mode, error: e.message };
        if (b?.session) {
            try { result.at = await b.url(); result.page = await b.pageText(); } catch { /* browser gone */ }
        }
    } finally {
        if (b) await b.close();
    }
    const line = JSON.stringify(result);
    if (process.env.MP_PERSON_LOG) appendFileSync(process.env.MP_PERSON_LOG, `${line}\n`);
    console.log(line);
    process.exit(result.ok ? 0 : 1);
}

main();
