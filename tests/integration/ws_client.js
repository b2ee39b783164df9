// SPDX-License-Identifier: MIT
// A real WebSocket client against tests/integration/test_ws.c's server: Node's ws (Debian
// node-ws). Prints PASS/FAIL lines, or one SKIP line when the module is missing.
// Usage: node ws_client.js PORT [deflate|nodeflate [CA]]: with CA (a PEM file), the same
// checks over wss://localhost, the server's certificate verified with it.
'use strict';
module.paths.push('/usr/share/nodejs');
let WebSocket;
try {
  WebSocket = require('ws');
} catch (e) {
  console.log('SKIP no node ws module (Debian: node-ws)');
  process.exit(0);
}
const ca = process.argv[4] ? require('fs').readFileSync(process.argv[4]) : null;
const url = (ca ? 'wss://localhost:' : 'ws://127.0.0.1:') + process.argv[2];
const deflate = process.argv[3] !== 'nodeflate'; // a build without zlib agrees to none
const report = (name, ok, detail) =>
  console.log((ok ? 'PASS ' : 'FAIL ') + name + (ok ? '' : ': ' + detail));

function open(path, opts, protocols) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url + path, protocols || [], Object.assign(ca ? {ca} : {}, opts));
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => reject(new Error('status ' + res.statusCode)));
  });
}

const next = (ws) => new Promise((resolve, reject) => {
  ws.once('message', (data, binary) => resolve({data, binary}));
  ws.once('close', (code) => reject(new Error('closed ' + code)));
});
const closed = (ws) => new Promise((resolve) => ws.once('close', (code, reason) =>
  resolve({code, reason: reason.toString()})));

const cases = {
  async echo() {
    const ws = await open('/echo', {perMessageDeflate: true});
    if (deflate)
      report('deflate negotiated', ws.extensions.includes('permessage-deflate'), ws.extensions);
    else
      report('no deflate without zlib', ws.extensions === '', ws.extensions);
    for (const msg of ['hello', 'κόσμε '.repeat(50), Buffer.alloc(900, 7)]) {
      ws.send(msg);
      const m = await next(ws);
      const ok = typeof msg === 'string' ? !m.binary && m.data.toString() === msg
                                         : m.binary && Buffer.compare(m.data, msg) === 0;
      report('echo ' + (typeof msg) + ' ' + msg.length, ok, m.data.length);
    }
    ws.close(1000);
    report('close echoed', (await closed(ws)).code === 1000, '');
  },
  async fragments() {
    const ws = await open('/echo', {perMessageDeflate: false});
    ws.send('frag', {fin: false});
    ws.send('mented', {fin: true});
    const m = await next(ws);
    report('fragmented send', m.data.toString() === 'fragmented', m.data.toString());
    ws.terminate();
  },
  async ping() {
    const ws = await open('/echo');
    const pong = new Promise((resolve) => ws.once('pong', (d) => resolve(d.toString())));
    ws.ping('hey');
    report('ping answered', (await pong) === 'hey', '');
    ws.terminate();
  },
  async serverClose() {
    const ws = await open('/echo');
    const c = closed(ws);
    ws.send('close:4002');
    const {code, reason} = await c;
    report('server close', code === 4002 && reason === 'done', code + ' ' + reason);
  },
  async tooBig() {
    const ws = await open('/echo', {perMessageDeflate: false});
    const c = closed(ws);
    ws.send('x'.repeat(1001));
    report('too big: 1009', (await c).code === 1009, '');
  },
  async subprotocol() {
    const ws = await open('/proto', {}, ['chat']);
    report('subprotocol chosen', ws.protocol === 'chat', ws.protocol);
    ws.terminate();
  },
  async badOrigin() {
    try {
      await open('/origin', {origin: 'http://evil.ex'});
      report('origin refused', false, 'accepted');
    } catch (e) {
      report('origin refused', /403/.test(e.message), e.message);
    }
  },
};

(async () => {
  for (const [name, run] of Object.entries(cases)) {
    try {
      await Promise.race([run(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 20000))]);
    } catch (e) {
      report(name, false, e.message);
    }
  }
  process.exit(0);
})();
