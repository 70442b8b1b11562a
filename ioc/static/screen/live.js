// The websocket of docs/api.md §5, kept open forever: subscribe (with `since` after the first
// time), hand every message on, and when the socket closes or falls silent, reconnect after
// an exponentially growing, fully jittered delay — so a hundred screens that lose the same
// server do not all come back in the same second.

/**
 * Delay before reconnect attempt `n` (1, 2, …): uniform in [base/2, min(cap, base·2^(n-1))].
 * The cap is 10 s, not the usual 30 s: a province has tens to hundreds of screens, which one
 * server takes back in a second (snapshots are shared per unit), and a TV that stays grey
 * for half a minute after a planned restart is what operators would call broken.
 */
export function backoffDelay(n, { baseMs = 1000, capMs = 10000, random = Math.random } = {}) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, n - 1));
  const floor = Math.min(baseMs / 2, ceiling);
  return Math.round(floor + random() * (ceiling - floor));
}

/**
 * new LiveConnection({url, subscribe, check, onMessage, onState})
 * - url(): the websocket URL (may carry ?token=);
 * - subscribe(): the subscribe message to send on open (built fresh, so `since` is current);
 * - check(): optional async probe before each attempt; throwing {fatal: true} stops retrying
 *   (a refused token), any other error counts as a failed attempt;
 * - onState({state, attempt, retryMs, reason}) with state connecting | live | down | fatal.
 * The server pings at least every 15 s; `idleMs` of silence means the link is dead even if
 * the browser has not noticed yet (a pulled cable, a frozen proxy).
 */
export class LiveConnection {
  constructor({
    url, subscribe, check, onMessage, onState, idleMs = 40000, pingMs = 15000, backoff = {},
  }) {
    Object.assign(this, { url, subscribe, check, onMessage, onState, idleMs, pingMs, backoff });
    this.pinger = null;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.watchdog = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    clearInterval(this.pinger);
    if (this.ws) this.ws.close(1000, 'screen closed');
  }

  async connect() {
    if (this.stopped) return;
    this.attempt += 1;
    this.onState({ state: 'connecting', attempt: this.attempt });
    if (this.check) {
      try {
        await this.check();
      } catch (err) {
        if (err && err.fatal) {
          this.stopped = true;
          this.onState({ state: 'fatal', reason: err.reason || 'unauthorized' });
          return;
        }
        this.retry('unreachable');
        return;
      }
    }
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (err) {
      this.retry('bad url');
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      ws.send(JSON.stringify(this.subscribe()));
      // A resumed screen with nothing to replay would otherwise hear nothing until the
      // server's next ping; the pong confirms at once that the figures are current again.
      ws.send('{"type":"ping"}');
      this.kick();
      // The server closes sockets that stay silent (a dead screen must not hold a slot), so
      // the screen says it is alive; the pong also proves the link when nothing changes.
      clearInterval(this.pinger);
      this.pinger = setInterval(() => {
        if (this.ws === ws && ws.readyState === WebSocket.OPEN) ws.send('{"type":"ping"}');
      }, this.pingMs);
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return; // not ours to interpret; the next ping or event tells the link is alive
      }
      this.kick();
      if (this.attempt !== 0 && msg.type !== 'error') {
        // The server answered the subscription: the link is good, start backoff afresh.
        this.attempt = 0;
        this.onState({ state: 'live' });
      }
      this.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearTimeout(this.watchdog);
      clearInterval(this.pinger);
      if (this.stopped) return;
      const reason = ev.reason || (opened ? `closed ${ev.code}` : 'refused');
      this.retry(reason, ev.code);
    };
  }

  /** Restart the silence watchdog: no message for idleMs → close and reconnect. */
  kick() {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      const ws = this.ws;
      if (!ws) return;
      this.ws = null;
      ws.onclose = null;
      clearInterval(this.pinger);
      ws.close(4000, 'silent');
      this.retry('silent');
    }, this.idleMs);
  }

  retry(reason, code) {
    if (this.stopped) return;
    const attempt = Math.max(1, this.attempt);
    const retryMs = backoffDelay(attempt, this.backoff);
    this.onState({ state: 'down', attempt, retryMs, reason, code });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), retryMs);
  }
}
