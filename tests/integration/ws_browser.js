// SPDX-License-Identifier: MIT
// Drives headless Chromium over the DevTools protocol (with Node's ws, Debian node-ws):
// two tabs open the demo's /chat, one ("alice") listens, the other ("bob") says a line;
// the line must show in both pages' DOM (the room is one topic, published to every
// subscriber on every worker). Prints PASS/FAIL lines.
// Usage: node ws_browser.js DEVTOOLS_WS_URL CHAT_BASE_URL
'use strict';
module.paths.push('/usr/share/nodejs');
const WebSocket = require('ws');
const [browserUrl, base] = process.argv.slice(2);
const report = (name, ok, detail) =>
  console.log((ok ? 'PASS ' : 'FAIL ') + name + (ok ? '' : ': ' + detail));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const cdp = new WebSocket(browserUrl, {perMessageDeflate: false});
let nextId = 1;
const pending = new Map();
cdp.on('message', (raw) => {
  const m = JSON.parse(raw);
  if (m.id && pending.has(m.id)) {
    const {resolve, reject} = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) reject(new Error(m.error.message)); else resolve(m.result);
  }
});
function send(method, params, sessionId) {
  const id = nextId++;
  cdp.send(JSON.stringify({id, method, params: params || {}, sessionId}));
  return new Promise((resolve, reject) => pending.set(id, {resolve, reject}));
}

async function openTab(url) {
  const {targetId} = await send('Target.createTarget', {url});
  const {sessionId} = await send('Target.attachToTarget', {targetId, flatten: true});
  return sessionId;
}

async function evaluate(session, expression) {
  const r = await send('Runtime.evaluate', {expression, returnByValue: true}, session);
  return r.result.value;
}

// Polls `expression` in the tab until it is truthy (bounded: 15 s).
async function waitFor(session, expression) {
  for (let i = 0; i < 150; i++) {
    try {
      const v = await evaluate(session, expression);
      if (v) return v;
    } catch (e) { /* the page is still loading */ }
    await sleep(100);
  }
  return null;
}

cdp.on('open', async () => {
  try {
    const alice = await openTab(base + '/chat?name=alice');
    const open = await waitFor(alice, "document.getElementById('status') && " +
                                      "document.getElementById('status').textContent === 'open'");
    report('alice connected', open, 'status never open');
    const bob = await openTab(base + '/chat?name=bob&say=' + encodeURIComponent('hello from bob'));
    const line = "[...document.querySelectorAll('#log li')].map(l => l.textContent)" +
                 ".includes('bob: hello from bob')";
    report('alice sees bob', await waitFor(alice, line), 'the line never showed in her page');
    report('bob sees his own line', await waitFor(bob, line), 'the room never echoed it');
    // Typed into the form, as a person would.
    await evaluate(bob, "document.getElementById('text').value = 'typed'; " +
                        "document.getElementById('form').requestSubmit(); true");
    const typed = "[...document.querySelectorAll('#log li')].map(l => l.textContent)" +
                  ".includes('bob: typed')";
    report('the form sends', await waitFor(alice, typed), 'the typed line never came');
  } catch (e) {
    report('browser', false, e.message);
  }
  process.exit(0);
});
cdp.on('error', (e) => { report('devtools', false, e.message); process.exit(0); });
