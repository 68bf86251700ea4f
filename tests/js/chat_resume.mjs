// A JavaScript client of the chat example (seed 004), as a browser or Node client would be
// written: the global WebSocket, JSON.parse without BigInt. It presents, takes session_id
// from READY as JSON.parse gives it, drops the connection, and resumes with that number.
// The resume must be answered by READY with "resumed":true and the replay of s=1, not 4006.
//
//     node [--experimental-websocket] tests/js/chat_resume.mjs ws://127.0.0.1:PORT/ TOKEN
//
// Prints one JSON line describing what happened; exits 0 on success, 1 on any failure.
// Driven by tests/python/test_js_client.py.

const [url, token] = process.argv.slice(2);
const STEP_MS = 5000; // every wait is bounded

if (typeof WebSocket !== "function") {
  console.error("no global WebSocket: Node 20/21 need --experimental-websocket, Node 22+ has it");
  process.exit(1);
}

/** Opens a WebSocket whose messages are read one at a time with next(). */
function open(url) {
  const ws = new WebSocket(url);
  const queue = [];
  const waiting = [];
  const push = (item) => (waiting.length ? waiting.shift()(item) : queue.push(item));
  ws.onmessage = (e) => push({ text: e.data });
  ws.onclose = (e) => push({ closed: e.code });
  ws.onerror = () => push({ error: "websocket error" });
  const next = (what) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${STEP_MS} ms`)), STEP_MS);
      const take = (item) => {
        clearTimeout(timer);
        if (item.text === undefined) reject(new Error(`waiting for ${what}: ${JSON.stringify(item)}`));
        else resolve({ raw: item.text, msg: JSON.parse(item.text) });
      };
      queue.length ? take(queue.shift()) : waiting.push(take);
    });
  const opened = new Promise((resolve, reject) => {
    ws.onopen = resolve;
    setTimeout(() => reject(new Error("no connection")), STEP_MS);
  });
  return { ws, next, opened };
}

async function main() {
  const first = open(url);
  await first.opened;
  const hello = await first.next("HELLO");
  if (hello.msg.f !== 100) throw new Error(`expected HELLO, got ${hello.raw}`);
  first.ws.send(JSON.stringify({ f: 110, cnf: { token } }));
  const ready = await first.next("READY");
  if (ready.msg.f !== 140) throw new Error(`expected READY, got ${ready.raw}`);
  const sessionId = ready.msg.cnf.session_id; // a Number: what every JS client keeps
  const onWire = /"session_id":(\d+)/.exec(ready.raw)[1];
  const joined = await first.next("ROOM_USER_ADD");
  if (joined.msg.s !== 1) throw new Error(`expected s=1, got ${joined.raw}`);
  const closed = new Promise((resolve) => first.ws.addEventListener("close", resolve));
  first.ws.close();
  await closed;

  const second = open(url);
  await second.opened;
  await second.next("HELLO");
  second.ws.send(JSON.stringify({ f: 110, cnf: { token, session_id: sessionId, s: 0 } }));
  const answer = await second.next("the answer to the resume");
  const report = {
    on_wire: onWire,
    parsed: String(sessionId),
    safe: Number.isSafeInteger(sessionId),
    answer: answer.msg,
  };
  if (answer.msg.f !== 140 || answer.msg.cnf.resumed !== true) {
    console.log(JSON.stringify(report));
    throw new Error(`resume refused: ${answer.raw} (session_id ${onWire} parsed as ${sessionId})`);
  }
  const replay = await second.next("the replay");
  report.replay = replay.msg;
  console.log(JSON.stringify(report));
  if (replay.msg.f !== 130 || replay.msg.s !== 1 || replay.msg.t !== "ROOM_USER_ADD") {
    throw new Error(`expected the replay of s=1 ROOM_USER_ADD, got ${replay.raw}`);
  }
  second.ws.close();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`FAIL: ${e.message}`);
    process.exit(1);
  },
);
