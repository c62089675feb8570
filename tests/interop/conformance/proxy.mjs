// Test-only forwarding proxy for the MCP conformance suite, whose CLI cannot send an
// Authorization header. It listens on a loopback port and forwards every request whose path is
// /mcp or under /mcp to the MemberPass server, byte for byte (method, path, query, headers
// including Host and Origin, body), adding only `Authorization: Bearer <token>`. Responses
// (status, headers, body, SSE streams) come back unchanged and unbuffered. Any other path is
// answered 404 by the proxy itself, so the token never reaches /v1 or anything else.
//
//   node proxy.mjs --upstream http://127.0.0.1:PORT --listen-port 0 --port-file FILE
//   (token in the environment: MP_CONFORMANCE_TOKEN)
//
// It prints nothing secret; it writes the port it listens on to --port-file once listening.
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
    options: {
        upstream: { type: 'string' },
        'listen-port': { type: 'string', default: '0' },
        'port-file': { type: 'string' },
    },
});
const token = process.env.MP_CONFORMANCE_TOKEN;
if (!values.upstream || !token) {
    console.error('usage: MP_CONFORMANCE_TOKEN=… node proxy.mjs --upstream http://127.0.0.1:PORT [--listen-port N] [--port-file F]');
    process.exit(2);
}
const upstream = new URL(values.upstream);
if (upstream.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(upstream.hostname)) {
    console.error(`proxy: upstream must be a loopback http URL, got ${values.upstream}`);
    process.exit(2);
}

const isMcpPath = (url) => /^\/mcp(?:[/?#]|$)/.test(url);

const server = http.createServer((req, res) => {
    if (!isMcpPath(req.url)) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('conformance proxy: only /mcp is forwarded\n');
        return;
    }
    // rawHeaders keeps the client's names and order and repeated headers; drop any Authorization
    // the client sent (it sends none) and add ours.
    const headers = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
        if (req.rawHeaders[i].toLowerCase() === 'authorization') continue;
        headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
    }
    headers.push('Authorization', `Bearer ${token}`);
    const up = http.request({
        host: upstream.hostname.replace(/^\[|\]$/g, ''),
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers, // Host (and Origin) pass through unchanged: the server's DNS-rebinding check sees the client's
        setHost: false,
    });
    up.on('response', (ur) => {
        res.writeHead(ur.statusCode, ur.statusMessage, ur.rawHeaders);
        res.flushHeaders();
        ur.pipe(res);
    });
    up.on('error', (err) => {
        if (!res.headersSent) {
            res.writeHead(502, { 'content-type': 'text/plain' });
            res.end(`conformance proxy: upstream error: ${err.message}\n`);
        } else {
            res.destroy(err);
        }
    });
    req.on('aborted', () => up.destroy());
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
    req.pipe(up);
});

server.listen(Number(values['listen-port']), '127.0.0.1', () => {
    const { port } = server.address();
    if (values['port-file']) writeFileSync(values['port-file'], `${port}\n`);
    console.error(`conformance proxy: http://127.0.0.1:${port}/mcp -> ${upstream.origin}/mcp (+ Authorization)`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); process.exit(0); });
