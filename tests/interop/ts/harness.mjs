// What the TypeScript SDK checks share: the environment, an HTTP exchange recorder whose
// evidence is printed under a failing check, a client per token, and the checks themselves.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export function env(name) {
    const v = process.env[name];
    if (!v) {
        console.error(`ts: missing environment variable ${name}`);
        process.exit(2);
    }
    return v;
}

export const URL_ = new URL(env('MCP_URL'));
export const CHECK_TIMEOUT_MS = Number(process.env.CHECK_TIMEOUT_MS || 20000);

// ---------------------------------------------------------------------------------------------
// HTTP exchange recorder: every request the transport makes, with status and (for JSON and error
// responses) a body excerpt. Printed under a failing check as evidence. Tokens are masked.

export function mask(s) {
    return String(s).replace(/mpt_(live|test)_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}/g, 'mpt_$1_$2…[token]');
}

export function truncate(s, n = 1500) {
    s = String(s);
    return s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s;
}

export function recordingFetch(log) {
    return async (input, init = {}) => {
        const entry = {
            method: init.method || 'GET',
            url: String(input),
            request: typeof init.body === 'string' ? truncate(init.body, 600) : undefined,
        };
        log.push(entry);
        let response;
        try {
            response = await fetch(input, init);
        } catch (e) {
            entry.error = String(e?.cause ?? e);
            throw e;
        }
        entry.status = response.status;
        entry.contentType = response.headers.get('content-type');
        entry.wwwAuthenticate = response.headers.get('www-authenticate') ?? undefined;
        entry.sessionId = response.headers.get('mcp-session-id') ?? undefined;
        const ct = (entry.contentType || '').toLowerCase();
        if (response.status >= 400 || ct.startsWith('application/json')) {
            try {
                entry.response = truncate(await response.clone().text());
            } catch (e) {
                entry.response = `<unreadable: ${e}>`;
            }
        }
        return response;
    };
}

export function formatLog(log) {
    return log
        .map((e) => {
            const lines = [`    > ${e.method} ${e.url}${e.request ? ` ${e.request}` : ''}`];
            if (e.error) lines.push(`    < network error: ${e.error}`);
            else if (e.status === undefined) lines.push('    < (no response)');
            else {
                lines.push(
                    `    < ${e.status} ${e.contentType ?? ''}` +
                        (e.wwwAuthenticate ? ` www-authenticate: ${e.wwwAuthenticate}` : '') +
                        (e.sessionId ? ` mcp-session-id: ${e.sessionId}` : ''),
                );
                if (e.response !== undefined) lines.push(`    < ${e.response}`);
            }
            return mask(lines.join('\n'));
        })
        .join('\n');
}

// ---------------------------------------------------------------------------------------------

export function newClient(token, log) {
    const transport = new StreamableHTTPClientTransport(URL_, {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
        fetch: recordingFetch(log),
    });
    const client = new Client({ name: 'memberpass-interop-ts', version: '0.0.0' }, { capabilities: {} });
    client.onerror = () => {}; // e.g. a 405 on the optional GET stream; not a failure in itself
    return { client, transport };
}

export function withTimeout(promise, ms, what) {
    let timer;
    return Promise.race([
        promise,
        new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms (${what})`)), ms);
        }),
    ]).finally(() => clearTimeout(timer));
}

export class CheckFailed extends Error {}
export function expect(cond, message) {
    if (!cond) throw new CheckFailed(message);
}

export function describeError(e) {
    if (!e) return String(e);
    const parts = [e.constructor?.name ?? 'Error'];
    if (e.code !== undefined) parts.push(`code=${e.code}`);
    parts.push(e.message);
    if (e.data !== undefined) parts.push(`data=${JSON.stringify(e.data)}`);
    return mask(truncate(parts.join(' '), 1200));
}

export function textOf(result) {
    return (result?.content ?? [])
        .filter((c) => c.type === 'text')
        .map((c) => c.text)
        .join('\n');
}

export const results = [];
export async function check(name, fn, timeoutMs = CHECK_TIMEOUT_MS) {
    const log = [];
    const started = Date.now();
    let ok = false;
    let detail = '';
    try {
        detail = (await withTimeout(fn(log), timeoutMs, name)) ?? '';
        ok = true;
    } catch (e) {
        detail = e instanceof CheckFailed ? mask(e.message) : `unexpected error: ${describeError(e)}`;
    }
    const ms = Date.now() - started;
    console.log(`${ok ? 'PASS' : 'FAIL'} ts: ${name} (${ms} ms)${detail ? ` — ${detail}` : ''}`);
    if (!ok && log.length) console.log(`  HTTP exchanges:\n${formatLog(log)}`);
    results.push({ name, ok });
    return ok;
}

export async function closeQuietly(client) {
    try {
        await withTimeout(client.close(), 5000, 'close');
    } catch {
        /* ignore */
    }
}

