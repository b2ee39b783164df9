// SPDX-License-Identifier: MIT
// Drives headless Chromium over the DevTools protocol (with Node's ws, Debian node-ws)
// through two of the demo's pages, as a person would use them:
// - /chat (issue 17): two tabs, one ("alice") listens, the other ("bob") says a line; the
//   line must show in both pages' DOM (the room is one topic, published to every
//   subscriber on every worker);
// - /upload (issue 18): the form filled with text and three files (a binary one of 3 MiB,
//   an empty one, one with a UTF-8 name) and sent as the browser encodes it; the answer
//   must list each file's size and SHA-256 as Node computes them, and the text fields.
// Prints PASS/FAIL lines.
// Usage: node browser.js DEVTOOLS_WS_URL DEMO_BASE_URL FILES_DIR
'use strict';
module.paths.push('/usr/share/nodejs');
const WebSocket = require('ws');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const [browserUrl, base, filesDir] = process.argv.slice(2);
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

async function chat() {
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
}

// Writes a file for the upload form; returns its path, size and SHA-256.
function makeFile(name, bytes) {
  const p = path.join(filesDir, name);
  fs.writeFileSync(p, bytes);
  return {name, path: p, size: bytes.length,
          sha256: crypto.createHash('sha256').update(bytes).digest('hex')};
}

// Puts files into the <input type=file> that `selector` finds (DOM.setFileInputFiles).
async function setFiles(session, selector, files) {
  const r = await send('Runtime.evaluate', {expression: `document.querySelector('${selector}')`},
                       session);
  await send('DOM.setFileInputFiles', {files: files.map((f) => f.path),
                                       objectId: r.result.objectId}, session);
}

async function upload() {
  const big = makeFile('random.bin', crypto.randomBytes(3 << 20));
  const empty = makeFile('empty.txt', Buffer.alloc(0));
  const named = makeFile('Grüße "quoted".txt', Buffer.from('line one\r\n--not a boundary\r\n'));
  const tab = await openTab(base + '/upload');
  const ready = await waitFor(tab, "document.querySelector('input[name=files]') !== null");
  report('the upload form loads', ready, 'no file input in the page');
  if (!ready) return;
  await send('DOM.enable', {}, tab);
  await setFiles(tab, 'input[name=files]', [big, empty]);
  await setFiles(tab, 'input[name=extra]', [named]);
  await evaluate(tab, "document.querySelector('input[name=title]').value = 'holiday ☀'; " +
                      "document.querySelector('textarea[name=notes]').value = 'a\\nb'; " +
                      "document.querySelector('form').requestSubmit(); true");
  // The answer replaces the page: JSON, shown as text.
  const text = await waitFor(tab, "document.location.pathname === '/upload' && " +
                                  "document.contentType === 'application/json' && " +
                                  "document.body && (document.querySelector('pre') || " +
                                  "document.body).textContent");
  if (!text) {
    report('the form is answered', false, 'no JSON answer');
    return;
  }
  let answer;
  try {
    answer = JSON.parse(text);
  } catch (e) {
    report('the answer is JSON', false, text.slice(0, 200));
    return;
  }
  const got = answer.files || [];
  report('three files stored', got.length === 3, JSON.stringify(got));
  const want = [['files', big], ['files', empty], ['extra', named]];
  want.forEach(([field, f], i) => {
    const g = got[i] || {};
    // HTML's multipart/form-data encoding sends '"' in a filename as %22 (and CR, LF as
    // %0D, %0A) without escaping '%': not reversible, so the library hands the name over
    // as sent (docs/uploads.md).
    const sent = f.name.replace(/"/g, '%22');
    report(`${f.name}: field, name, size and SHA-256`,
           g.field === field && g.filename === sent && g.size === f.size && g.sha256 === f.sha256,
           `got ${JSON.stringify(g)}, want ${field} ${sent} ${f.size} ${f.sha256}`);
  });
  // (a form sends a textarea's line breaks as CRLF: HTML's form data set)
  const fields = answer.fields || {};
  report('the text fields', fields.title === 'holiday ☀' && fields.notes === 'a\r\nb',
         JSON.stringify(fields));
}

cdp.on('open', async () => {
  for (const [name, run] of [['chat', chat], ['upload', upload]]) {
    try {
      await run();
    } catch (e) {
      report(name, false, e.message);
    }
  }
  process.exit(0);
});
cdp.on('error', (e) => { report('devtools', false, e.message); process.exit(0); });
