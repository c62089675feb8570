// Shared by the Node OAuth harnesses (ts-client.mjs, remote-client.mjs): checks and their
// evidence, the loopback callback server, the Chromium person, an HTTP exchange recorder.

import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

export const PERSON_JS = fileURLToPath(new URL('./person.mjs', import.meta.url));
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CHECK_TIMEOUT_MS = Number(process.env.CHECK_TIMEOUT_MS || 60000);

export function env(name) {
    const v = process.env[name];
    if (!v) {
        console.error(`missing environment variable ${name}`);
        process.exit(2);
    }
    return v;
}

export function mask(s) {
    return String(s)
        .replace(/(mp(?:r)?t_(?:live|test)_[0-9A-Za-z]{12})_[0-9A-Za-z]{38}/g, '$1_…')
        .replace(/([?&](?:code|code_verifier)=)[^&\s"]+/g, '$1…');
}

const truncate = (s, n = 1200) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);

/** A fetch that records every exchange (method, url, status, WWW-Authenticate, body excerpt). */
export function recordingFetch(log) {
    return async (input, init = {}) => {
        const url = String(input instanceof Request ? input.url : input);
        const body = init.body ?? undefined;
        const entry = {
            method: init.method || (input instanceof Request ? input.method : 'GET'),
            url,
            request: typeof body === 'string' ? body : body instanceof URLSearchParams ? body.toString() : undefined,
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
        entry.wwwAuthenticate = response.headers.get('www-authenticate') ?? undefined;
        const ct = (response.headers.get('content-type') || '').toLowerCase();
        if (response.status >= 400 || ct.startsWith('application/json')) {
            entry.response = truncate(await response.clone().text().catch((e) => `<unreadable ${e}>`));
        }
        return response;
    };
}

/** The client's own loopback redirect target: `next()` resolves with the URL the browser was sent to. */
export class CallbackServer {
    static async start(path = '/callback') {
        const cb = new CallbackServer();
        cb.waiters = [];
        cb.server = createServer((req, res) => {
            const url = new URL(req.url, `http://127.0.0.1:${cb.port}`);
            if (url.pathname !== path) {
                res.writeHead(404).end();
                return;
            }
            res.writeHead(200, { 'content-type': 'text/html' }).end('<p>Done; you can close this page.</p>');
            const w = cb.waiters.shift();
            if (w) w(url);
        });
        await new Promise((r) => cb.server.listen(0, '127.0.0.1', r));
        cb.port = cb.server.address().port;
        cb.url = `http://127.0.0.1:${cb.port}${path}`;
        return cb;
    }
    next(timeoutMs = CHECK_TIMEOUT_MS) {
        return new Promise((resolve, reject) => {
            const t = setTimeout(() => reject(new Error(`no callback at ${this.url} within ${timeoutMs} ms`)), timeoutMs);
            this.waiters.push((u) => { clearTimeout(t); resolve(u); });
        });
    }
    close() { return new Promise((r) => this.server.close(() => r())); }
}

/** Runs person.mjs with `args`; resolves with its JSON result (never rejects). */
export function person(args) {
    return new Promise((resolve) => {
        const child = spawn(process.execPath, [PERSON_JS, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d) => { out += d; });
        child.on('close', (code) => {
            const line = out.trim().split('\n').pop() || '';
            try { resolve(JSON.parse(line)); } catch { resolve({ ok: false, error: `person.mjs exited ${code}: ${out.slice(0, 500)}` }); }
        });
    });
}

export class Checks {
    constructor(tag) { this.tag = tag; this.failed = 0; this.passed = 0; }
    async run(name, log, fn) {
        const mark = log.length;
        let timer;
        try {
            const detail = await Promise.race([
                fn(),
                new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS); }),
            ]);
            console.log(`PASS ${this.tag}: ${name}${detail ? ` — ${mask(detail)}` : ''}`);
            this.passed++;
            return true;
        } catch (e) {
            this.failed++;
            console.log(`FAIL ${this.tag}: ${name}\n  ${mask(e?.stack ?? e).split('\n').slice(0, 6).join('\n  ')}`);
            for (const x of log.slice(mark).slice(-14)) {
                console.log(`    ${x.method} ${mask(x.url)} → ${x.status ?? x.error}${x.wwwAuthenticate ? ` [${x.wwwAuthenticate}]` : ''}${x.request ? ` req=${mask(truncate(x.request, 300))}` : ''}${x.response ? ` res=${mask(truncate(x.response, 300))}` : ''}`);
            }
            return false;
        } finally {
            clearTimeout(timer);
        }
    }
    finish() {
        console.log(`${this.tag}: ${this.passed} passed, ${this.failed} failed`);
        process.exit(this.failed || !this.passed ? 1 : 0);
    }
}
