// SPDX-License-Identifier: MIT
// A real EventSource client (Debian's node-eventsource) against the demo's /events:
// prints "PASS name" or "FAIL name" per check, for tests/integration/sse.sh to count.
// Usage: node sse_client.js BASE_URL
'use strict';
const EventSource = require('eventsource');
const base = process.argv[2];

function check(name, ok, detail) {
  console.log((ok ? 'PASS ' : 'FAIL ') + name + (ok || detail === undefined ? '' : ': ' + detail));
}

// The first `count` tick events of a stream, and how many times it (re)opened.
function read(url, count, options) {
  return new Promise((resolve) => {
    const es = new EventSource(url, options || {});
    const events = [];
    let opens = 0;
    const timer = setTimeout(() => done(), 10000);
    function done() {
      clearTimeout(timer);
      resolve({ es, events, opens });
    }
    es.onopen = () => { opens++; };
    es.addEventListener('tick', (e) => {
      events.push({ id: e.lastEventId, data: e.data });
      if (events.length === count) done();
    });
  });
}

async function openStreams() {
  const r = await fetch(base + '/events/open');
  return (await r.text()).trim();
}

// Waits (bounded) until the demo counts `want` open streams; true when it does.
async function streamsDropTo(want) {
  for (let i = 0; i < 100; i++) {
    if ((await openStreams()) === want) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function main() {
  // The server ends each stream after 4 events; the client reconnects by itself, sending
  // Last-Event-ID, and the count goes on where it stopped.
  const a = await read(base + '/events?ms=50&n=4', 6);
  const ids = a.events.map((e) => e.id).join(',');
  check('six events, ids 1..6 across a reconnection', ids === '1,2,3,4,5,6', ids);
  check('data is the id', a.events.every((e) => e.data === e.id), JSON.stringify(a.events));
  check('the client reconnected', a.opens >= 2, 'opens ' + a.opens);
  a.es.close();
  check('the server noticed a client leaving', await streamsDropTo('0'));

  // A client leaving an idle stream (no event for a minute, no heartbeat yet): the
  // server notices its close at once, not at the next send.
  const idle = new EventSource(base + '/events?ms=60000');
  await new Promise((r) => { idle.onopen = r; });
  check('the idle stream is open', await streamsDropTo('1'));
  idle.close();
  check('the server noticed the idle client leaving', await streamsDropTo('0'));

  // An explicit Last-Event-ID (a client that remembers where it was).
  const b = await read(base + '/events?ms=50', 2, { headers: { 'Last-Event-ID': '41' } });
  b.es.close();
  const bids = b.events.map((e) => e.id).join(',');
  check('Last-Event-ID 41 resumes at 42', bids === '42,43', bids);
}

main().then(() => process.exit(0), (err) => { check('client', false, String(err)); process.exit(0); });
