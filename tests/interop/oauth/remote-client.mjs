// OAuth end to end with mcp-remote (the stdio bridge many desktop clients run): it registers
// dynamically, "opens a browser" through the npm package `open` → xdg-open → $BROWSER =
// browser.sh → the Chromium person, receives the code on its own loopback callback server, and
// keeps its tokens in MCP_REMOTE_CONFIG_DIR. We drive it as an MCP client over stdio (the TS SDK's
// StdioClientTransport), as Claude Desktop would: connect, list tools, call a read tool, be
// refused a write outside the grant, refresh after expiry, revoke in Connected apps (→ 401 for
// its token), and see mcp-remote re-authorize and carry on.
//
// Environment (set by tests/interop/oauth.sh): MCP_URL, MP_BASE, ACCESS_TTL_S, MP_NODE,
// MP_PERSON_EMAIL / MP_PERSON_PASSWORD, MP_REMOTE_DIR (a scratch dir of this run).

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Checks, person, env, sleep } from './common.mjs';

const TAG = 'mcp-remote';
const MCP_URL = env('MCP_URL');
const BASE = env('MP_BASE');
const TTL_S = Number(env('ACCESS_TTL_S'));
const DIR = env('MP_REMOTE_DIR');
const HERE = fileURLToPath(new URL('.', import.meta.url));
const PROXY = join(HERE, 'node_modules/mcp-remote/dist/proxy.js');
const CLIENT_NAME = `MemberPass interop mcp-remote ${process.pid}`;
const VERSION = JSON.parse(readFileSync(join(HERE, 'node_modules/mcp-remote/package.json'), 'utf8')).version;

mkdirSync(join(DIR, 'config'), { recursive: true });
const PERSON_LOG = join(DIR, 'person.jsonl');
const URLS = join(DIR, 'browser-urls.txt');
const MODE = join(DIR, 'person-mode');
writeFileSync(MODE, 'allow');

const lines = (f) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);
const personRuns = () => lines(PERSON_LOG).map((l) => JSON.parse(l));
const browserUrls = () => lines(URLS).map((u) => new URL(u));
function storedTokens() {
    const dir = join(DIR, 'config', 'mcp-remote-v1');
    const f = existsSync(dir) ? readdirSync(dir).find((n) => n.endsWith('_tokens.json')) : undefined;
    return f ? JSON.parse(readFileSync(join(dir, f), 'utf8')) : undefined;
}
async function until(what, fn, ms = 60000) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        const v = await fn();
        if (v) return v;
        await sleep(200);
    }
    throw new Error(`timed out waiting for ${what}`);
}

const checks = new Checks(TAG);
const log = []; // mcp-remote's own HTTP is not visible to us; failures print its stderr tail
const stderr = [];
const transport = new StdioClientTransport({
    command: process.execPath,
    args: [PROXY, MCP_URL, '--host', '127.0.0.1', '--auth-timeout', '90',
        '--static-oauth-client-metadata', JSON.stringify({ client_name: CLIENT_NAME })],
    env: {
        PATH: process.env.PATH,
        HOME: DIR,
        MCP_REMOTE_CONFIG_DIR: join(DIR, 'config'),
        BROWSER: join(HERE, 'browser.sh'),
        MP_NODE: env('MP_NODE'),
        MP_PERSON_EMAIL: env('MP_PERSON_EMAIL'),
        MP_PERSON_PASSWORD: env('MP_PERSON_PASSWORD'),
        MP_PERSON_LOG: PERSON_LOG,
        MP_PERSON_URLS: URLS,
        MP_PERSON_MODE_FILE: MODE,
        ...(process.env.CHROMEDRIVER ? { CHROMEDRIVER: process.env.CHROMEDRIVER } : {}),
    },
    stderr: 'pipe',
});
transport.stderr?.on('data', (d) => { stderr.push(String(d)); if (stderr.length > 400) stderr.shift(); });
const client = new Client({ name: 'memberpass-interop-mcp-remote', version: '0.0.0' }, { capabilities: {} });
const tail = () => stderr.join('').split('\n').slice(-25).map((l) => `    | ${l}`).join('\n');

async function run(name, fn) {
    const ok = await checks.run(name, log, fn);
    if (!ok) console.log(`  mcp-remote ${VERSION} stderr (tail):\n${tail()}`);
    return ok;
}

const connected = await run(`connect: mcp-remote ${VERSION} registers, opens $BROWSER (Chromium consent), gets a token`, async () => {
    await client.connect(transport);
    // The browser reached the callback before the person wrote its result: wait for it.
    const runs = await until("the person's result", () => (personRuns().length ? personRuns() : undefined), 20000);
    if (runs.length !== 1 || !runs[0].ok) throw new Error(`the person's runs: ${JSON.stringify(runs)}`);
    const consent = runs[0].consent;
    if (!consent?.text.includes(CLIENT_NAME)) throw new Error('the consent page does not name mcp-remote');
    if (!consent.checked.includes('project:view-any') || consent.checked.includes('project:create')) throw new Error(`preset: ${consent.checked}`);
    const tok = storedTokens();
    if (!/^mpt_test_/.test(tok?.access_token ?? '') || !/^mprt_test_/.test(tok?.refresh_token ?? '')) throw new Error('mcp-remote holds no mpt_/mprt_ pair');
    const u = browserUrls()[0];
    if (u.searchParams.get('code_challenge_method') !== 'S256' || !u.searchParams.get('resource')) throw new Error(`authorization URL ${u}`);
    return `redirect ${u.searchParams.get('redirect_uri')}`;
});
if (!connected) { await client.close().catch(() => {}); checks.finish(); }

await run('list tools and call a read tool through the bridge', async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    if (!names.includes('list_projects') || names.includes('create_project')) throw new Error(`tools: ${names}`);
    const r = await client.callTool({ name: 'list_projects', arguments: {} });
    if (r.isError) throw new Error(JSON.stringify(r.content).slice(0, 300));
    return `${names.length} tools`;
});

const writeName = `interop-oauth-remote-${process.pid}`;
const SERVER_LOG = process.env.MP_SERVER_LOG;
const mcp403 = () => (SERVER_LOG ? lines(SERVER_LOG).filter((l) => /path="\/mcp" status=403/.test(l)).length : 0);
await run('a write outside the grant is refused (HTTP 403 on /mcp; a step-up, if any, is denied)', async () => {
    writeFileSync(MODE, 'deny');
    const before = browserUrls().length;
    const forbidden = mcp403();
    let outcome;
    try {
        outcome = await client.callTool({ name: 'create_project', arguments: { name: writeName } }, undefined, { timeout: 60000 });
    } catch (e) {
        outcome = e;
    } finally {
        writeFileSync(MODE, 'allow');
    }
    if (!(outcome instanceof Error) && !outcome?.isError) throw new Error(`the write succeeded: ${JSON.stringify(outcome).slice(0, 300)}`);
    if (SERVER_LOG && mcp403() <= forbidden) throw new Error('the server log shows no 403 on /mcp for the write');
    const stepUp = browserUrls().slice(before);
    if (stepUp.length && !/project:create/.test(stepUp[0].searchParams.get('scope') ?? '')) throw new Error(`a step-up that does not ask for project:create: ${stepUp[0]}`);
    const r = await client.callTool({ name: 'list_projects', arguments: {} });
    if (JSON.stringify(r.content).includes(writeName)) throw new Error('the project was created anyway');
    return `${stepUp.length ? 'step-up denied in Chromium' : 'no step-up'}; refused: ${String(outcome?.message ?? JSON.stringify(outcome.content)).slice(0, 160)}`;
});

// No "step-up granted" check here (py-client.py has one): after a denied step-up, mcp-remote's
// transport does not step up again for the same challenge in the same session (it remembers the
// WWW-Authenticate it already tried) and answers the call with the 403.

// mcp-remote refreshes MARGIN_S (60 s) before expiry instead of waiting for a 401; oauth.sh gives
// it tokens that live a little longer than that. The check: once inside the margin, the next call
// goes through with a new, rotated pair (a refresh_token grant, no browser), and the new token works.
const MARGIN_S = Number(process.env.MP_REFRESH_MARGIN_S || 0);
await run(`refresh ahead of expiry (tokens of ${TTL_S} s, refreshed ${MARGIN_S} s ahead), no browser`, async () => {
    const old = storedTokens();
    const opened = browserUrls().length;
    const issuedAt = old.expires_at ? old.expires_at - TTL_S * 1000 : Date.now();
    const due = issuedAt + Math.max(TTL_S - MARGIN_S + 1, 1) * 1000;
    await sleep(Math.max(due - Date.now(), 0) + 500);
    const r = await client.callTool({ name: 'list_projects', arguments: {} });
    if (r.isError) throw new Error(JSON.stringify(r.content).slice(0, 300));
    const now = await until('mcp-remote to store the refreshed token', () => {
        const t = storedTokens();
        return t && t.access_token !== old.access_token ? t : undefined;
    }, 10000);
    if (now.refresh_token === old.refresh_token) throw new Error('the refresh token did not rotate');
    if (browserUrls().length !== opened) throw new Error('mcp-remote opened the browser instead of refreshing');
    const fresh = await fetch(MCP_URL, {
        method: 'POST',
        headers: { authorization: `Bearer ${now.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    if (fresh.status !== 200) throw new Error(`the refreshed access token got ${fresh.status}`);
    return 'new access token, rotated refresh token';
});

await run('revoke in Connected apps (Chromium) → its token gets 401; mcp-remote re-authorizes and carries on', async () => {
    const run1 = await person(['revoke', '--base', BASE, '--client-name', CLIENT_NAME]);
    if (!run1.ok) throw new Error(`revoke failed: ${JSON.stringify(run1)}`);
    const dead = storedTokens().access_token;
    const r = await fetch(MCP_URL, {
        method: 'POST',
        headers: { authorization: `Bearer ${dead}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    if (r.status !== 401) throw new Error(`the revoked grant's token got ${r.status}`);
    const opened = browserUrls().length;
    // The first call after revocation may fail while mcp-remote signs in again; it must recover.
    let result;
    await until('a successful call after re-authorization', async () => {
        try {
            result = await client.callTool({ name: 'list_projects', arguments: {} }, undefined, { timeout: 60000 });
            return !result.isError;
        } catch {
            return false;
        }
    }, 90000);
    if (browserUrls().length <= opened) throw new Error('mcp-remote did not open the browser again');
    if (storedTokens().access_token === dead) throw new Error('still the revoked token');
    return `grant ${run1.revoked} revoked; re-authorized`;
});

await client.close().catch(() => {});
checks.finish();
