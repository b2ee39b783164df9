/* SPDX-License-Identifier: MIT */
/* The demo's chat page (GET /chat): one room for every visitor on every worker, over a
 * WebSocket to /ws/chat that publishes each line to the topic "chat". ?name=N sets the
 * name; ?say=T sends T once connected (the browser test, tests/integration/browser.sh,
 * opens one page that listens and one that says something). */
#ifndef DEMO_CHAT_PAGE_H
#define DEMO_CHAT_PAGE_H

static const char CHAT_PAGE[] =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Chopin chat</title>\n"
    "<style>body{font:16px sans-serif;max-width:40em;margin:2em auto}#log{list-style:none;"
    "padding:0}#log li{padding:.2em 0;border-bottom:1px solid #eee}</style></head><body>\n"
    "<h1>Chat</h1>\n<p>Status: <span id=\"status\">connecting</span></p>\n"
    "<ul id=\"log\"></ul>\n"
    "<form id=\"form\"><input id=\"name\" size=\"8\" aria-label=\"name\"> "
    "<input id=\"text\" size=\"40\" autocomplete=\"off\" aria-label=\"message\"> "
    "<button>Send</button></form>\n"
    "<script>\n"
    "const q = new URLSearchParams(location.search);\n"
    "const $ = (id) => document.getElementById(id);\n"
    "$('name').value = q.get('name') || 'guest' + Math.floor(Math.random() * 1000);\n"
    "const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') +\n"
    "                         location.host + '/ws/chat');\n"
    "function send(text) { ws.send(JSON.stringify({name: $('name').value, text})); }\n"
    "ws.onopen = () => { $('status').textContent = 'open'; if (q.get('say')) send(q.get('say')); };\n"
    "ws.onclose = (e) => { $('status').textContent = 'closed ' + e.code; };\n"
    "ws.onmessage = (e) => {\n"
    "  let m; try { m = JSON.parse(e.data); } catch { return; }\n"
    "  const li = document.createElement('li');\n"
    "  li.textContent = String(m.name) + ': ' + String(m.text);\n"
    "  $('log').appendChild(li);\n"
    "};\n"
    "$('form').onsubmit = (e) => {\n"
    "  e.preventDefault();\n"
    "  if ($('text').value) { send($('text').value); $('text').value = ''; }\n"
    "};\n"
    "</script></body></html>\n";

#endif
