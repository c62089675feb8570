// OAuth end to end with the official MCP TypeScript SDK client (StreamableHTTPClientTransport
// with an OAuthClientProvider): dynamic registration, the authorization URL handed to the
// Chromium person (person.mjs), a loopback callback server, finishAuth(code); then list tools,
// call a read tool, be refused a write outside the grant (HTTP 403 insufficient_scope), refresh
// once the access token has expired, revoke in Connected apps (→ 401), and reconnect.
//
// Environment (set by tests/interop/oauth.sh): MCP_URL, MP_BASE (the issuer), ACCESS_TTL_S,
// MP_PERSON_EMAIL / MP_PERSON_PASSWORD (read by person.mjs), CHECK_TIMEOUT_MS.
// Prints "PASS ts-oauth: …" / "FAIL ts-oauth: …" per check; exits 1 if any failed.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { CallbackServer, Checks, person, recordingFetch, env, sleep } from './common.mjs';

const TAG = 'ts-oauth';
const MCP_URL = new URL(env('MCP_URL'));
const BASE = env('MP_BASE');
const TTL_S = Number(env('ACCESS_TTL_S'));
const CLIENT_NAME = `MemberPass interop TS SDK ${process.pid}`;

class Provider {
    constructor(callback) {
        this.callback = callback;
        this.redirects = []; // every authorization URL the SDK asked us to open
        this.saved = []; // every token set the SDK saved
        this.consent = true; // false: record the URL, open nothing (the step-up check)
        this.personRuns = [];
        this._state = undefined;
    }
    get redirectUrl() { return this.callback.url; }
    get clientMetadata() {
        return {
            client_name: CLIENT_NAME,
            redirect_uris: [this.callback.url],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none',
        };
    }
    state() { this._state = Math.random().toString(36).slice(2) + Date.now().toString(36); return this._state; }
    clientInformation() { return this.client; }
    saveClientInformation(info) { this.client = info; }
    tokens() { return this._tokens; }
    saveTokens(t) { this._tokens = t; this.saved.push(t); }
    saveCodeVerifier(v) { this.verifier = v; }
    codeVerifier() { return this.verifier; }
    invalidateCredentials(scope) {
        if (scope === 'all' || scope === 'client') this.client = undefined;
        if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    }
    redirectToAuthorization(url) {
        this.redirects.push(new URL(url));
        if (this.consent) this.personRuns.push(person(['authorize', '--url', String(url)]));
    }
}

const checks = new Checks(TAG);
const log = [];
const fetchFn = recordingFetch(log);
const callback = await CallbackServer.start();
const provider = new Provider(callback);

/** The callback's URL once the person got there; fails as soon as the person fails. */
async function arrival(waiting) {
    const runP = provider.personRuns.at(-1);
    if (!runP) throw new Error('the SDK never asked to open the authorization URL');
    const failed = runP.then((r) => (r.ok ? new Promise(() => {}) : Promise.reject(new Error(`the person could not consent: ${JSON.stringify(r)}`))));
    const landed = await Promise.race([waiting, failed]);
    return { landed, run: await runP };
}

async function connectWithOAuth() {
    const waiting = callback.next();
    const transport = new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider, fetch: fetchFn });
    const client = new Client({ name: 'memberpass-interop-ts-oauth', version: '0.0.0' }, { capabilities: {} });
    let first;
    try {
        await client.connect(transport);
        first = 'connected without authorization';
    } catch (e) {
        first = e;
    }
    if (!(first instanceof UnauthorizedError)) throw new Error(`expected UnauthorizedError (the SDK redirects to authorization), got ${first?.stack ?? first}`);
    const { landed, run } = await arrival(waiting);
    const q = landed.searchParams;
    if (q.get('error')) throw new Error(`the authorization answered error=${q.get('error')}`);
    if (q.getAll('state').length !== 1 || q.get('state') !== provider._state) throw new Error(`state ${q.getAll('state')} ≠ ${provider._state}`);
    if (q.get('iss') !== BASE) throw new Error(`iss ${q.get('iss')} ≠ ${BASE}`);
    await transport.finishAuth(q.get('code'));
    await transport.close().catch(() => {});
    const t2 = new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider, fetch: fetchFn });
    const c2 = new Client({ name: 'memberpass-interop-ts-oauth', version: '0.0.0' }, { capabilities: {} });
    await c2.connect(t2);
    return { client: c2, transport: t2, run };
}

let session;
await checks.run('connect: 401 → discovery → dynamic registration → Chromium sign-in + consent → code → token', log, async () => {
    session = await connectWithOAuth();
    const reg = log.find((e) => e.method === 'POST' && e.url === `${BASE}/register`);
    if (!reg || reg.status !== 201) throw new Error(`no 201 from POST /register: ${JSON.stringify(reg)}`);
    const auth = provider.redirects[0];
    for (const p of ['code_challenge', 'state', 'resource']) if (!auth.searchParams.get(p)) throw new Error(`authorization URL lacks ${p}`);
    if (auth.searchParams.get('code_challenge_method') !== 'S256') throw new Error('not S256');
    const consent = session.run.consent;
    if (!consent) throw new Error('the person never saw a consent page');
    if (!consent.checked.includes('project:view-any')) throw new Error(`read preset not checked: ${consent.checked}`);
    if (consent.checked.includes('project:create')) throw new Error(`a write was pre-checked: ${consent.checked}`);
    if (!consent.text.includes(CLIENT_NAME)) throw new Error('the consent page does not name the client');
    const tok = provider.tokens();
    if (!/^mpt_test_/.test(tok.access_token) || !/^mprt_test_/.test(tok.refresh_token ?? '')) throw new Error('not an mpt_/mprt_ token pair');
    return `client ${provider.client.client_id}, scope "${tok.scope}", expires_in ${tok.expires_in}`;
});
if (!session) checks.finish();
const { client } = session;

await checks.run('list tools (filtered by the grant)', log, async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    if (!names.includes('list_projects')) throw new Error(`no list_projects in ${names}`);
    if (names.includes('create_project')) throw new Error('create_project listed although the grant lacks project:create');
    return `${names.length} tools`;
});

await checks.run('call a read tool (list_projects)', log, async () => {
    const r = await client.callTool({ name: 'list_projects', arguments: {} });
    if (r.isError) throw new Error(JSON.stringify(r.content).slice(0, 300));
    return 'ok';
});

const writeName = `interop-oauth-ts-${process.pid}`;
await checks.run('a write outside the grant is refused: HTTP 403 insufficient_scope; the grant does not widen', log, async () => {
    provider.consent = false;
    const before = provider.redirects.length;
    const mark = log.length;
    let outcome;
    try {
        outcome = await client.callTool({ name: 'create_project', arguments: { name: writeName } });
    } catch (e) {
        outcome = e;
    } finally {
        provider.consent = true;
    }
    if (!(outcome instanceof Error)) throw new Error(`the write was answered with a result: ${JSON.stringify(outcome).slice(0, 300)}`);
    const seen = log.slice(mark);
    const refused = seen.filter((e) => e.status === 403 && /insufficient_scope/.test(e.wwwAuthenticate ?? ''));
    if (!refused.length) throw new Error('no 403 with error="insufficient_scope"');
    if (!/project:create/.test(refused[0].wwwAuthenticate)) throw new Error(`the challenge does not name project:create: ${refused[0].wwwAuthenticate}`);
    // SDK 1.32: on insufficient_scope it first tries its refresh token; a refresh never widens
    // the grant, so the retry is refused again and the SDK gives up. A newer SDK may instead
    // redirect the person (asking for project:create); both are a refusal.
    const stepUp = provider.redirects.slice(before);
    const refreshed = seen.some((e) => e.url === `${BASE}/token` && /grant_type=refresh_token/.test(e.request ?? '') && e.status === 200);
    let how;
    if (stepUp.length) {
        if (!/project:create/.test(stepUp[0].searchParams.get('scope') ?? '')) throw new Error(`the step-up did not ask for project:create: ${stepUp[0]}`);
        how = 'the SDK asked the person to step up (not granted)';
    } else if (refreshed) {
        if (refused.length < 2) throw new Error('the SDK refreshed but did not retry');
        how = 'the SDK refreshed and was refused again: the refresh did not widen the grant';
    } else {
        throw new Error(`neither a step-up nor a refresh after the 403: ${outcome}`);
    }
    const { content } = await client.callTool({ name: 'list_projects', arguments: {} });
    if (JSON.stringify(content).includes(writeName)) throw new Error('the project was created anyway');
    return `${how}; challenge: ${refused[0].wwwAuthenticate}`;
});

await checks.run(`refresh after the access token expires (${TTL_S} s)`, log, async () => {
    const old = provider.tokens();
    await sleep((TTL_S + 1) * 1000);
    const mark = log.length;
    const r = await client.callTool({ name: 'list_projects', arguments: {} });
    if (r.isError) throw new Error(JSON.stringify(r.content).slice(0, 300));
    const seen = log.slice(mark);
    if (!seen.some((e) => e.status === 401)) throw new Error('the expired token was not refused with 401');
    const refresh = seen.find((e) => e.url === `${BASE}/token` && /grant_type=refresh_token/.test(e.request ?? ''));
    if (!refresh || refresh.status !== 200) throw new Error(`no successful refresh_token grant: ${JSON.stringify(refresh)}`);
    const now = provider.tokens();
    if (now.access_token === old.access_token) throw new Error('same access token');
    if (now.refresh_token === old.refresh_token) throw new Error('the refresh token did not rotate');
    return 'new access token and rotated refresh token';
});

await checks.run('revoke in Connected apps (Chromium) → the next call gets 401', log, async () => {
    const run = await person(['revoke', '--base', BASE, '--client-name', CLIENT_NAME]);
    if (!run.ok) throw new Error(`revoke failed: ${JSON.stringify(run)}`);
    const r = await fetch(MCP_URL, {
        method: 'POST',
        headers: {
            authorization: `Bearer ${provider.tokens().access_token}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'mcp-protocol-version': '2025-11-25',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    if (r.status !== 401) throw new Error(`the revoked grant's token got ${r.status}`);
    const www = r.headers.get('www-authenticate') ?? '';
    if (!/invalid_token/.test(www)) throw new Error(`no invalid_token challenge: ${www}`);
    return `grant ${run.revoked}`;
});

await checks.run('reconnect: the SDK sees 401, its refresh token is dead, it authorizes again', log, async () => {
    const waiting = callback.next();
    const mark = log.length;
    const before = provider.redirects.length;
    let e;
    try {
        await client.callTool({ name: 'list_projects', arguments: {} });
    } catch (err) {
        e = err;
    }
    if (!(e instanceof UnauthorizedError)) throw new Error(`expected UnauthorizedError, got ${e?.stack ?? e}`);
    const refresh = log.slice(mark).find((x) => x.url === `${BASE}/token` && /grant_type=refresh_token/.test(x.request ?? ''));
    if (refresh && refresh.status === 200) throw new Error('the revoked grant\'s refresh token still worked');
    if (provider.redirects.length === before) throw new Error('no new authorization');
    const { landed } = await arrival(waiting);
    await session.transport.finishAuth(landed.searchParams.get('code'));
    const t = new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider, fetch: fetchFn });
    const c = new Client({ name: 'memberpass-interop-ts-oauth', version: '0.0.0' }, { capabilities: {} });
    await c.connect(t);
    const { tools } = await c.listTools();
    const r = await c.callTool({ name: 'list_projects', arguments: {} });
    if (r.isError) throw new Error('read failed after reconnecting');
    await c.close();
    return `${tools.length} tools after reconnecting`;
});

await client.close().catch(() => {});
await callback.close();
checks.finish();
