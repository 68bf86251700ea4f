// The postern chat client: docs/protocols/chat.md (the i386chat gateway, seed 004).
// One page, no dependencies: sign in with a token, channels, messages, typing, presence,
// heartbeats at the announced interval, and resume after a lost connection.
'use strict';

const GATEWAY_PATH = '/gateway';
const TYPING_EVERY_MS = 3000;   // START_TYPING at most this often
const TYPING_SHOWN_MS = 6000;   // "NAME is typing" shown this long
const MISSED_WINDOW_MS = 500;   // events this soon after a resumed READY are the replay
const NO_RETRY = new Set([4001, 4002, 4004, 4005, 4013, 4015, 4017]);
const ERRORS = {
  4001: 'the server did not understand a request (unknown function code)',
  4002: 'the server could not read a request (decode error)',
  4003: 'not signed in in time',
  4004: 'wrong token: no user has it',
  4005: 'already signed in on this connection',
  4006: 'the session could not be resumed: starting a new one',
  4008: 'slow down: too many requests',
  4009: 'the server heard nothing from us for too long (heartbeat timeout)',
  4010: 'unknown event',
  4011: 'refused: invalid request (a channel name is 1-32 of a-z 0-9 - _, new and within your quota; a message is 1-2000 characters)',
  4012: 'not allowed: only the author or an admin may do that',
  4013: 'you are banned',
  4015: 'this session was resumed in another window',
  4016: 'no such message or channel',
  4017: 'too many sessions open for this user',
};
const CLOSES = {
  1001: 'the server is going away',
  1006: 'the connection was lost',
  1008: 'the connection was closed by the server (policy)',
  1009: 'a message was too big',
};

const $ = (id) => document.getElementById(id);
const state = {
  token: null, ws: null, sessionId: null, lastS: 0, me: null, channel: null,
  hbInt: 0, beat: null, acked: true, retry: null, retryMs: 500,
  channels: new Set(), members: new Map(), typing: new Map(), lastTyping: 0,
  missedUntil: 0, missedLine: null, missed: 0, wantOpen: false,
};

function gatewayUrl() {
  return (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + GATEWAY_PATH;
}

function setStatus(text, kind) {
  const s = $('status');
  s.textContent = text;
  s.className = 'status ' + kind;
  s.dataset.state = kind;
  s.dataset.lastS = String(state.lastS);
}

function showError(text) {
  const e = $('error');
  e.textContent = text;
  e.hidden = !text;
}

function errorWords(code) {
  return ERRORS[code] || 'error ' + code;
}

function send(obj) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(obj));
    return true;
  }
  return false;
}

function execute(t, cnf) {
  if (!send({ f: 130, t: t, cnf: cnf })) showError('not connected: try again in a moment');
}

// ---- connection ----

function connect() {
  clearTimeout(state.retry);
  state.wantOpen = true;
  setStatus(state.sessionId ? 'reconnecting…' : 'connecting…',
    state.sessionId ? 'reconnecting' : 'offline');
  const ws = new WebSocket(gatewayUrl());
  state.ws = ws;
  ws.onmessage = (e) => { if (state.ws === ws) receive(JSON.parse(e.data)); };
  ws.onclose = (e) => { if (state.ws === ws) lost(e.code); };
}

function lost(code) {
  clearInterval(state.beat);
  state.beat = null;
  state.ws = null;
  state.typing.clear();
  renderTyping();
  if (!state.wantOpen) return;
  if (NO_RETRY.has(code)) {
    state.wantOpen = false;
    setStatus('disconnected', 'offline');
    if (code === 4004) signOut(errorWords(code));
    return;
  }
  setStatus('reconnecting…', 'reconnecting');
  state.retry = setTimeout(connect, state.retryMs);
  state.retryMs = Math.min(state.retryMs * 2, 8000);
}

function startHeartbeat() {
  clearInterval(state.beat);
  state.acked = true;
  state.beat = setInterval(() => {
    if (!state.acked && state.ws) {
      // No echo to the last heartbeat: take the connection for dead and resume.
      state.ws.close();
      lost(1006);
      return;
    }
    state.acked = false;
    send({ f: 120 });
  }, state.hbInt);
}

function receive(msg) {
  switch (msg.f) {
    case 100:
      state.hbInt = msg.cnf.hb_int;
      if (state.sessionId) {
        send({ f: 110, cnf: { token: state.token, session_id: state.sessionId, s: state.lastS } });
      } else {
        send({ f: 110, cnf: { token: state.token } });
      }
      break;
    case 120:
      state.acked = true;
      break;
    case 140:
      ready(msg.cnf);
      break;
    case 130:
      if (msg.s <= state.lastS) return; // seen already: never shown twice
      state.lastS = msg.s;
      $('status').dataset.lastS = String(msg.s);
      event(msg.t, msg.cnf);
      break;
    case 150:
      failed(msg.cnf.c, msg.cnf.d);
      break;
  }
}

function ready(cnf) {
  state.retryMs = 500;
  state.me = cnf.user;
  state.channel = cnf.channel;
  showError('');
  if (cnf.resumed) {
    state.missedUntil = Date.now() + MISSED_WINDOW_MS;
    state.missed = 0;
    state.missedLine = systemLine('reconnected: the session resumed; missed events are highlighted');
  } else {
    state.sessionId = cnf.session_id;
    state.lastS = 0;
    state.channels = new Set(cnf.channels || ['general']);
    state.members = new Map();
    for (const name of cnf.members || []) addMember(name);
    $('members-note').hidden = Array.isArray(cnf.members);
  }
  setStatus('connected as ' + cnf.user, 'online');
  $('signin').hidden = true;
  $('chat').hidden = false;
  $('signout').hidden = false;
  startHeartbeat();
  renderChannels();
  renderMembers();
}

function failed(code, fatal) {
  if (code === 4006) {
    // Resume refused: the connection stays open for a fresh present.
    state.sessionId = null;
    state.lastS = 0;
    systemLine(errorWords(code));
    send({ f: 110, cnf: { token: state.token } });
    return;
  }
  showError(errorWords(code) + (fatal ? ' (disconnected)' : ''));
}

// ---- events ----

function event(t, cnf) {
  const missed = Date.now() < state.missedUntil;
  if (missed) {
    state.missed += 1;
    state.missedLine.textContent = 'reconnected: ' + state.missed + ' missed event' +
      (state.missed === 1 ? '' : 's') + ' below';
  }
  let line = null;
  switch (t) {
    case 'MESSAGE_CREATE':
      state.typing.delete(cnf.author);
      renderTyping();
      line = messageLine(cnf);
      break;
    case 'MESSAGE_DELETE': {
      const li = document.querySelector('#messages li[data-id="' + cnf.id + '"]');
      if (li) li.remove();
      break;
    }
    case 'START_TYPING':
      if (cnf.channel === state.channel && !missed) {
        state.typing.set(cnf.user, Date.now() + TYPING_SHOWN_MS);
        renderTyping();
        setTimeout(renderTyping, TYPING_SHOWN_MS + 50);
      }
      break;
    case 'CHANNEL_ADD':
      state.channels.add(cnf.channel);
      renderChannels();
      line = systemLine(cnf.by + ' created #' + cnf.channel);
      break;
    case 'ROOM_USER_ADD':
      if (Array.isArray(cnf.members)) {
        // Our own move: the new channel's members, us included.
        state.channel = cnf.channel;
        state.members = new Map();
        for (const name of cnf.members) addMember(name);
        $('members-note').hidden = true;
        state.typing.clear();
        renderTyping();
        renderChannels();
        line = systemLine('you moved to #' + cnf.channel);
      } else if (cnf.channel === state.channel) {
        addMember(cnf.user);
        line = systemLine(cnf.user + ' joined #' + cnf.channel);
      }
      renderMembers();
      break;
    case 'ROOM_USER_REMOVE':
      if (cnf.channel === state.channel) {
        removeMember(cnf.user);
        line = systemLine(cnf.user + ' left #' + cnf.channel);
        renderMembers();
      }
      break;
    case 'SYSTEM_BAN_ADD':
      line = systemLine(cnf.user + ' was banned by ' + cnf.by);
      break;
    case 'GATEWAY_DOWN':
      line = systemLine('the server is going down: will reconnect');
      break;
  }
  if (line && missed) line.classList.add('missed');
}

function addMember(name) {
  state.members.set(name, (state.members.get(name) || 0) + 1);
}

function removeMember(name) {
  const n = (state.members.get(name) || 0) - 1;
  if (n > 0) state.members.set(name, n); else state.members.delete(name);
}

// ---- rendering (textContent only: nothing from the network becomes markup) ----

function appendLine(li) {
  const list = $('messages');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.appendChild(li);
  if (atBottom) list.scrollTop = list.scrollHeight;
  return li;
}

function span(cls, text) {
  const s = document.createElement('span');
  s.className = cls;
  s.textContent = text;
  return s;
}

function systemLine(text) {
  const li = document.createElement('li');
  li.className = 'system';
  li.textContent = text;
  return appendLine(li);
}

function messageLine(cnf) {
  const li = document.createElement('li');
  li.className = 'message';
  li.dataset.id = String(cnf.id);
  li.dataset.author = cnf.author;
  const time = new Date(cnf.timestamp).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  li.append(span('time', time), span('author', cnf.author), span('content', cnf.content));
  if (cnf.channel !== state.channel) li.append(span('time', '#' + cnf.channel));
  if (cnf.author === state.me) {
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'delete';
    del.title = 'Delete this message';
    del.textContent = '×';
    del.addEventListener('click', () => execute('MESSAGE_DELETE', { id: cnf.id }));
    li.append(del);
  }
  return appendLine(li);
}

function renderChannels() {
  const ul = $('channels');
  ul.replaceChildren();
  for (const name of [...state.channels].sort()) {
    const li = document.createElement('li');
    li.dataset.channel = name;
    if (name === state.channel) li.className = 'current';
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = '#' + name;
    b.addEventListener('click', () => {
      if (name !== state.channel) execute('CHANNEL_MOVE', { channel: name });
    });
    li.append(b);
    ul.append(li);
  }
  $('members-channel').textContent = '#' + (state.channel || 'general');
  $('message').placeholder = 'Message #' + (state.channel || 'general');
}

function renderMembers() {
  const ul = $('members');
  ul.replaceChildren();
  for (const [name, n] of [...state.members].sort((a, b) => a[0].localeCompare(b[0]))) {
    const li = document.createElement('li');
    li.dataset.user = name;
    li.textContent = name + (n > 1 ? ' (' + n + ' sessions)' : '');
    ul.append(li);
  }
}

function renderTyping() {
  const now = Date.now();
  const names = [...state.typing].filter(([, until]) => until > now).map(([n]) => n).sort();
  const p = $('typing');
  if (names.length === 0) p.textContent = '';
  else if (names.length === 1) p.textContent = names[0] + ' is typing';
  else p.textContent = names.slice(0, -1).join(', ') + ' and ' + names[names.length - 1] + ' are typing';
}

// ---- the person's actions ----

function signOut(why) {
  state.wantOpen = false;
  clearTimeout(state.retry);
  if (state.ws) state.ws.close(1000);
  state.ws = null;
  state.sessionId = null;
  state.lastS = 0;
  state.token = null;
  $('messages').replaceChildren();
  $('chat').hidden = true;
  $('signin').hidden = false;
  $('signout').hidden = true;
  setStatus('signed out', 'offline');
  showError(why || '');
}

document.addEventListener('DOMContentLoaded', () => {
  $('signin').addEventListener('submit', (e) => {
    e.preventDefault();
    state.token = $('token').value;
    $('token').value = '';
    showError('');
    connect();
  });
  $('signout').addEventListener('click', () => signOut(''));
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('message').value;
    if (!text) return;
    execute('MESSAGE_CREATE', { content: text });
    $('message').value = '';
    state.lastTyping = 0;
  });
  $('message').addEventListener('input', () => {
    const now = Date.now();
    if ($('message').value && now - state.lastTyping > TYPING_EVERY_MS) {
      state.lastTyping = now;
      send({ f: 130, t: 'START_TYPING', cnf: {} });
    }
  });
  $('new-channel').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('channel-name').value.trim();
    if (!name) return;
    execute('CHANNEL_ADD', { channel: name });
    $('channel-name').value = '';
  });
});
