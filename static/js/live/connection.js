/* The one live connection of a tab (/ws/workspace/ or /ws/live/), reconnected with exponential backoff and
 * jitter. On every (re)connect, every 30 s and when the tab becomes visible again the page asks the server
 * for the calls that are active now (config.data_url), so a card is never lost to a dropped socket, a Redis
 * restart or a push that could not reach this tab. Every message carries the call's version; the view keeps
 * the newest whatever order messages and snapshots arrive in.
 */
import { S, config, h, label, learnClock } from "./common.js";

const BACKOFF_BASE_MS = 500;
// At most 10 s between attempts: after an outage (Redis, a deploy) screen pops resume within 10 s of
// the server's return; 200 open tabs then try 20-40 times a second, which costs the server nothing.
const BACKOFF_CAP_MS = 10000;

export function startConnection(view) {
  const statusNode = document.getElementById("live-status");
  var socket = null;
  var attempt = 0;
  var reconnectTimer = null;
  var stopped = false;

  function setStatus(state) {
    if (!statusNode) return;
    statusNode.dataset.state = state;
    statusNode.textContent = label("connection", state);
    if (state === "login") {
      statusNode.textContent = "";
      statusNode.appendChild(
        h("a", { href: config.login_url + "?next=" + encodeURIComponent(location.pathname) }, S.connection.login)
      );
    }
  }

  function stop(state) {
    stopped = true;
    clearTimeout(reconnectTimer);
    setStatus(state);
  }

  function connect() {
    if (stopped) return;
    clearTimeout(reconnectTimer);
    // WEBSOCKET_URL when the live connection has its own address (make run), else this page's host.
    var base = config.ws_url || (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
    setStatus(attempt ? "retrying" : "connecting");
    var ws;
    try {
      ws = new WebSocket(base + config.ws_path);
    } catch (err) {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.onopen = function () {
      attempt = 0;
      setStatus("open");
      resync();
    };
    ws.onmessage = function (event) {
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      learnClock(message.sent_at);
      view.onMessage(message);
      // The card is on the page: the server times the screen pop from the notification's arrival
      // to this acknowledgement (mttcrm_screen_pop_latency_seconds).
      if (message.type === "call.show" && message.call && config.mode !== "board") {
        try {
          ws.send(JSON.stringify({ type: "ack", id: message.call.id, version: message.call.version }));
        } catch (err) { /* closing: nothing to report */ }
      }
    };
    ws.onclose = function (event) {
      if (socket !== ws) return;
      socket = null;
      if (event.code === 4401) return stop("login");
      if (event.code === 4403) return stop("forbidden");
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (stopped) return;
    // Exponential backoff with "equal jitter": half the step fixed, half random, so that a restarted
    // server is not hit by every open tab in the same second.
    var step = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * Math.pow(2, attempt));
    var delay = step / 2 + Math.random() * (step / 2);
    attempt += 1;
    setStatus("retrying");
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, delay);
  }

  window.addEventListener("online", function () {
    if (!socket && !stopped) {
      attempt = 0;
      connect();
    }
  });

  // --- resync: the server's list of active calls --------------------------------------------------------

  var resyncing = false;

  function resync() {
    if (resyncing || stopped) return;
    resyncing = true;
    var startedAt = performance.now();
    fetch(config.data_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) {
          stop("login");
          return null;
        }
        if (response.status === 403) {
          stop("forbidden");
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (body) {
        if (!body) return;
        learnClock(body.server_time);
        view.onSnapshot(body.calls || [], startedAt);
        // How many times the page agreed with the server (what a test waits for before it looks).
        document.body.dataset.resyncs = String(Number(document.body.dataset.resyncs || 0) + 1);
      })
      .catch(function () { /* offline: the next resync or reconnect tries again */ })
      .then(function () {
        resyncing = false;
      });
  }

  setInterval(resync, config.resync_every_ms || 30000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) resync();
  });

  connect();
}
