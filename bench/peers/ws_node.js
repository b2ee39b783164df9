// SPDX-License-Identifier: MIT
// The Node ws peer of bench/ws.sh (issue 17): an echo on /echo with Debian's node-ws,
// compression off (as the other servers run it). PORT (default 8080).
'use strict';
module.paths.push('/usr/share/nodejs');
const http = require('http');
const WebSocket = require('ws');
const server = http.createServer((req, res) => { res.writeHead(404); res.end(); });
const wss = new WebSocket.Server({server, path: '/echo', perMessageDeflate: false});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, {binary: isBinary}));
});
server.listen(Number(process.env.PORT || 8080), '127.0.0.1');
