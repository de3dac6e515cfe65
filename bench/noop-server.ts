import http from 'node:http';

/** The ceiling of this machine: a bare node:http server that answers 202 and does nothing. */
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(202, { 'Content-Type': 'application/json' });
    res.end('{"status":"accepted"}');
  });
});
server.listen(Number(process.env.PORT ?? 0), () => {
  const addr = server.address();
  process.stdout.write(`LISTENING ${typeof addr === 'object' && addr ? addr.port : ''}\n`);
});
process.on('SIGTERM', () => process.exit(0));
