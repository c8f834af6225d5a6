// The Node.js example app of noops: a page that shows which release and
// sandbox answered, and a health check. It uses one dependency (ms) so
// that the build has a node_modules layer to cache.
'use strict';
const http = require('http');
const os = require('os');
const ms = require('ms');

const port = Number(process.env.PORT || 8080);
const release = process.env.NOOPS_RELEASE || 'unknown';
const started = Date.now();

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    return res.end('ok\n');
  }
  if (req.url !== '/') {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    return res.end('not found\n');
  }
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'X-Release': release });
  res.end(`<!doctype html><html><head><meta charset="utf-8"><title>hello from noops</title></head>
<body><h1>Hello from Node.js on noops</h1>
<p>Release <b>${release}</b>, served by sandbox <code>${os.hostname()}</code> as uid ${process.getuid()}, up ${ms(Date.now() - started)}.</p>
</body></html>\n`);
});

server.listen(port, () => console.log(`hello-node: release ${release} listening on :${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
