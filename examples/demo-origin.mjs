// The demo origin behind conf/edge.yaml's /api/ and /users/{id} routes: answers with what it received, as JSON.
import http from 'node:http';

const port = Number(process.env.PORT || 8081);
http
  .createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify(
        { hello: 'from the demo origin', method: req.method, url: req.url, headers: req.headers, body_bytes: Buffer.concat(chunks).length },
        null,
        2,
      );
      res.writeHead(200, { 'content-type': 'application/json', 'x-powered-by': 'demo-origin', 'cache-control': 'max-age=10' });
      res.end(body + '\n');
    });
  })
  .listen(port, '127.0.0.1', () => console.error(`demo origin: listening on http://127.0.0.1:${port}`));
