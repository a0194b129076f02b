/* Screen pop: the operator's workspace (mode "workspace") and the supervisors' live board ("board").
 *
 * One WebSocket per tab (/ws/workspace/ or /ws/live/), reconnected with exponential backoff and
 * jitter. On every (re)connect, every 30 s and when the tab becomes visible again the page asks the
 * server for the calls that are active now, so a card is never lost to a dropped socket, a Redis
 * restart or a push that could not reach this process. Every message carries the call's version; the
 * newest wins whatever order messages and snapshots arrive in.
 *
 * Texts come translated from the template (json_script "live-config"); nothing here is user-facing
 * English. Data is always inserted as text, never as HTML.
 */
(function () {
  "use strict";

  var configNode = document.getElementById("live-config");
  if (!configNode) return;
  var config = JSON.parse(configNode.textContent);
  var S = config.strings;
  var lang = document.documentElement.lang || "ru";

  var BACKOFF_BASE_MS = 500;
  // At most 10 s between attempts: after an outage (Redis, a deploy) screen pops resume within 10 s of
  // the server's return; 200 open tabs then try 20-40 times a second, which costs the server nothing.
  var BACKOFF_CAP_MS = 10000;
  var STALE_TIMER_MS = 12 * 3600 * 1000;
  var RECENT_KEEP = 10;

  // --- small helpers --------------------------------------------------------------------------------

  function h(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "text") node.textContent = value;
        else if (key === "className") node.className = value;
        else node.setAttribute(key, value === true ? "" : value);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || seconds < 0) return "";
    seconds = Math.floor(seconds);
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    var secs = seconds % 60;
    var mm = hours ? String(minutes).padStart(2, "0") : String(minutes);
    return (hours ? hours + ":" : "") + mm + ":" + String(secs).padStart(2, "0");
  }

  var dateTimeFormat = new Intl.DateTimeFormat(lang, {
    day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit",
  });
  var timeFormat = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  function when(iso, withDate) {
    if (!iso) return "";
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    return (withDate ? dateTimeFormat : timeFormat).format(date);
  }

  function label(group, code) {
    return (S[group] && S[group][code]) || code || "";
  }

  function phaseLabel(data) {
    if (data.phase === "ringing") {
      return data.direction === "outgoing" ? S.phase.ringing_outgoing : S.phase.ringing_incoming;
    }
    return label("phase", data.phase);
  }

  function csrfToken() {
    var input = document.querySelector("#csrf-form [name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // Server clock minus browser clock, learnt from each message: the timers count in server time.
  var clockOffset = 0;

  function serverNow() {
    return Date.now() - clockOffset;
  }

  function learnClock(serverMs) {
    if (typeof serverMs === "number" && isFinite(serverMs)) clockOffset = Date.now() - serverMs;
  }

  // A running timer since an ISO time (the PBX's), falling back to when this page learnt about it.
  function elapsedSince(iso, fallbackMs) {
    var start = iso ? Date.parse(iso) : NaN;
    var now = serverNow();
    if (isNaN(start) || start > now + 5000 || now - start > STALE_TIMER_MS) start = fallbackMs;
    return Math.max(0, (now - start) / 1000);
  }

  // --- the connection ---------------------------------------------------------------------------------

  var statusNode = document.getElementById("live-status");
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
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    setStatus(attempt ? "retrying" : "connecting");
    var ws;
    try {
      ws = new WebSocket(scheme + location.host + config.ws_path);
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

  // --- alerts: sound and desktop notification -------------------------------------------------------------

  var SOUND_KEY = "mttcrm.sound";
  var soundToggle = document.getElementById("sound-toggle");
  var audio = null;

  function soundOn() {
    try {
      return localStorage.getItem(SOUND_KEY) !== "off";
    } catch (err) {
      return true;
    }
  }

  // Browsers only let a page make sound after the person interacted with it: the context is created
  // on the first click or key press, and a beep before that is silently skipped.
  function unlockAudio() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    if (!audio) audio = new Context();
    if (audio.state === "suspended") audio.resume().catch(function () {});
    return audio;
  }

  function beep() {
    if (!audio || audio.state !== "running") return;
    var start = audio.currentTime + 0.01;
    [0, 0.22].forEach(function (offset) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.25, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(start + offset);
      osc.stop(start + offset + 0.18);
    });
  }

  ["pointerdown", "keydown"].forEach(function (type) {
    document.addEventListener(type, unlockAudio, { once: true, capture: true });
  });

  if (soundToggle) {
    soundToggle.checked = soundOn();
    soundToggle.addEventListener("change", function () {
      try {
        localStorage.setItem(SOUND_KEY, soundToggle.checked ? "on" : "off");
      } catch (err) { /* private mode: the choice lasts for this page */ }
      if (soundToggle.checked) {
        unlockAudio();
        setTimeout(beep, 50);
      }
    });
  }

  var permissionButton = document.getElementById("notify-permission");

  function refreshPermissionButton() {
    if (!permissionButton) return;
    permissionButton.hidden = !("Notification" in window) || Notification.permission !== "default";
  }

  if (permissionButton) {
    refreshPermissionButton();
    permissionButton.addEventListener("click", function () {
      // Asked only when the operator presses the button, never on load.
      var asked = Notification.requestPermission(refreshPermissionButton);
      if (asked && asked.then) asked.then(refreshPermissionButton);
    });
  }

  // One sound per call across all tabs of this operator: the first tab to claim the call plays it.
  function claimAlert(callId) {
    var key = "mttcrm.alerted." + callId;
    function claim() {
      try {
        var now = Date.now();
        if (now - (Number(localStorage.getItem(key)) || 0) < 60000) return false;
        localStorage.setItem(key, String(now));
        return true;
      } catch (err) {
        return true;
      }
    }
    if (navigator.locks && navigator.locks.request) {
      return navigator.locks.request("mttcrm-alert", claim);
    }
    return Promise.resolve(claim());
  }

  function forgetOldClaims() {
    try {
      var cutoff = Date.now() - 3600 * 1000;
      for (var i = localStorage.length - 1; i >= 0; i--) {
        var key = localStorage.key(i);
        if (key && key.indexOf("mttcrm.alerted.") === 0 && Number(localStorage.getItem(key)) < cutoff) {
          localStorage.removeItem(key);
        }
      }
    } catch (err) { /* nothing to clean */ }
  }

  var desktopNotes = new Map();

  function alertNewCall(data) {
    if (document.hidden && "Notification" in window && Notification.permission === "granted") {
      var title = data.direction === "outgoing" ? S.notify_title_outgoing : S.notify_title_incoming;
      var who = data.contact && data.contact.name ? data.contact.name : S.unknown_number;
      try {
        // The same tag in every tab: the browser shows one notification per call.
        var note = new Notification(title, { body: who + "\n" + data.number_display, tag: "mttcrm-call-" + data.id });
        note.onclick = function () {
          window.focus();
          note.close();
        };
        desktopNotes.set(data.id, note);
      } catch (err) { /* some platforms only allow notifications from a service worker */ }
    }
    if (soundOn()) {
      claimAlert(data.id).then(function (first) {
        if (first) beep();
      });
    }
  }

  function closeDesktopNote(callId) {
    var note = desktopNotes.get(callId);
    if (note) {
      note.close();
      desktopNotes.delete(callId);
    }
  }

  // --- the workspace: cards and recent calls --------------------------------------------------------------

  function recentCallsList(items) {
    if (!items || !items.length) return h("p", { className: "muted", text: S.no_recent });
    var list = h("ol", { className: "card-history" });
    items.forEach(function (item) {
      var dir = item.direction === "outgoing" ? "↗" : item.direction === "incoming" ? "↙" : "•";
      var row = h(
        "li",
        null,
        h("span", { className: "dir", title: label("direction", item.direction), text: dir }),
        " ",
        h("a", { href: item.url, text: when(item.started_at, true) || "—" }),
        " ",
        h("span", { className: "badge badge-" + item.status, text: label("status", item.status) }),
        item.talk_seconds ? " " + duration(item.talk_seconds) : ""
      );
      // A player for the call's stored recording, for users allowed to listen (the media URL checks again).
      var slot = h("span", { className: "recording-slot", "data-recording-url": item.recording_url || "" });
      if (item.recording_url && config.can_listen) {
        slot.appendChild(
          h("audio", { controls: true, preload: "none", src: item.recording_url, "aria-label": S.recording })
        );
      }
      row.appendChild(slot);
      list.appendChild(row);
    });
    return list;
  }

  function renderCard(data) {
    var contact = data.contact;
    var known = contact && contact.name;
    var facts = h("dl", { className: "facts" });
    function fact(name, value) {
      if (!value) return;
      facts.appendChild(h("dt", { text: name }));
      facts.appendChild(h("dd", { text: value }));
    }
    if (contact) {
      fact(S.company, contact.company);
      fact(S.manager, contact.manager);
    }
    var links = h("footer", { className: "card-links" });
    if (contact) links.appendChild(h("a", { className: "button", href: contact.url, text: S.open_contact }));
    if (data.create_contact_url) {
      links.appendChild(h("a", { className: "button create-contact", href: data.create_contact_url, text: S.create_contact }));
    }
    links.appendChild(h("a", { href: data.url, text: S.details }));

    var timer = h("span", { className: "timer", hidden: data.phase !== "connected" });
    var card = h(
      "article",
      {
        className: "call-card phase-" + data.phase + " dir-" + data.direction,
        "data-call-id": data.id,
        "data-phase": data.phase,
      },
      h("header", null, h("span", { className: "phase-label", text: phaseLabel(data) }), timer),
      h("div", { className: "number", text: data.number_display || data.number || S.unknown_number }),
      h(
        "div",
        { className: "who" },
        known
          ? h("a", { className: "contact-name", href: contact.url, text: contact.name })
          : h("span", { className: "contact-name unknown", text: S.unknown_number })
      ),
      facts,
      contact && contact.notes
        ? h("div", { className: "notes" }, h("h3", { text: S.notes }), h("p", { text: contact.notes }))
        : null,
      h("div", { className: "history" }, h("h3", { text: S.recent }), recentCallsList(data.recent)),
      links
    );
    return card;
  }

  function renderRecent(data) {
    var contact = data.contact;
    var item = h("li", { className: "recent-item", "data-call-id": data.id });
    // Ended for this operator while the call goes on elsewhere (or its end is not known yet).
    var live = data.status === "ringing" || data.status === "in_progress";
    var dir = data.direction === "outgoing" ? "↗" : data.direction === "incoming" ? "↙" : "•";
    item.appendChild(
      h(
        "div",
        { className: "recent-line" },
        h("span", { className: "dir", title: label("direction", data.direction), text: dir }),
        " ",
        h("time", { text: when(data.started_at, true) }),
        " ",
        live
          ? h("span", { className: "badge", text: S.phase.ended })
          : h("span", { className: "badge badge-" + data.status, text: label("status", data.status) }),
        " ",
        h("span", { className: "phone", "data-e164": data.number || null, text: data.number_display || data.number || "" }),
        contact && contact.name ? " · " : "",
        contact && contact.name ? h("a", { href: contact.url, text: contact.name }) : null,
        data.talk_seconds ? " · " + duration(data.talk_seconds) : "",
        " ",
        h("a", { className: "details", href: data.url, text: S.details })
      )
    );
    if (!contact) {
      item.appendChild(h("p", { className: "muted", text: S.no_contact }));
      if (data.create_contact_url) {
        item.appendChild(h("a", { href: data.create_contact_url, text: S.create_contact }));
      }
      return item;
    }
    var text = h("textarea", { name: "text", rows: "2", maxlength: "2000", placeholder: S.note_placeholder, "aria-label": S.note_placeholder });
    var result = h("span", { className: "note-result", role: "status" });
    var button = h("button", { type: "submit", text: S.save_note });
    var form = h("form", { className: "note-form" }, text, button, result);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!text.value.trim()) return;
      button.disabled = true;
      var body = new FormData();
      body.append("text", text.value);
      fetch(data.note_url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
        body: body,
      })
        .then(function (response) {
          return response.json().then(function (json) {
            return { ok: response.ok && json.ok, json: json };
          });
        })
        .then(function (answer) {
          if (answer.ok) {
            text.value = "";
            result.textContent = S.note_saved;
            result.className = "note-result ok";
          } else {
            result.textContent = (answer.json && answer.json.error) || S.note_failed;
            result.className = "note-result error";
          }
        })
        .catch(function () {
          result.textContent = S.note_failed;
          result.className = "note-result error";
        })
        .then(function () {
          button.disabled = false;
        });
    });
    item.appendChild(form);
    return item;
  }

  function workspaceView() {
    var cardsNode = document.getElementById("cards");
    var emptyNode = document.getElementById("cards-empty");
    var recentNode = document.getElementById("recent");
    var recentEmpty = document.getElementById("recent-empty");
    var cards = new Map(); // call id -> {data, node, touched, connectedLocal}
    var ended = new Map(); // call id -> version it ended with (stale messages are ignored)

    function refreshEmpty() {
      emptyNode.hidden = cards.size > 0;
      recentEmpty.hidden = recentNode.children.length > 0;
    }

    function addRecent(data) {
      var old = recentNode.querySelector('[data-call-id="' + data.id + '"]');
      var node = renderRecent(data);
      if (old) {
        // Keep what the operator is typing: only the summary line is refreshed.
        old.replaceChild(node.firstChild, old.firstChild);
        return;
      }
      recentNode.insertBefore(node, recentNode.firstChild);
      while (recentNode.children.length > RECENT_KEEP) recentNode.removeChild(recentNode.lastChild);
    }

    function end(data) {
      ended.set(data.id, data.version);
      if (ended.size > 500) ended.delete(ended.keys().next().value);
      var current = cards.get(data.id);
      closeDesktopNote(data.id);
      if (current) {
        current.node.remove();
        cards.delete(data.id);
        // The hide message is slim on history: keep what the card knew.
        data = Object.assign({}, current.data, data, { recent: current.data.recent });
      }
      addRecent(data);
      refreshEmpty();
    }

    function upsert(data) {
      var seenEnd = ended.get(data.id);
      if (seenEnd !== undefined && seenEnd >= data.version) return;
      var current = cards.get(data.id);
      if (current && current.data.version > data.version) return;
      if (data.phase === "ended") {
        end(data);
        return;
      }
      var node = renderCard(data);
      if (current) {
        if (current.data.phase !== "connected" && data.phase === "connected") current.connectedLocal = serverNow();
        current.node.replaceWith(node);
        current.node = node;
        current.data = data;
        current.touched = performance.now();
      } else {
        cards.set(data.id, {
          data: data, node: node, touched: performance.now(),
          connectedLocal: serverNow(),
        });
        cardsNode.insertBefore(node, cardsNode.firstChild);
        if (data.phase === "ringing") alertNewCall(data);
      }
      tick();
      refreshEmpty();
    }

    function tick() {
      cards.forEach(function (entry) {
        if (entry.data.phase !== "connected") return;
        var timer = entry.node.querySelector(".timer");
        timer.hidden = false;
        timer.textContent = duration(elapsedSince(entry.data.connected_at, entry.connectedLocal));
      });
    }

    (config.recent || []).slice().reverse().forEach(function (data) {
      ended.set(data.id, data.version);
      addRecent(data);
    });
    refreshEmpty();
    setInterval(tick, 1000);
    setInterval(forgetOldClaims, 10 * 60 * 1000);

    return {
      onMessage: function (message) {
        if (message.call && /^call\.(show|update|hide)$/.test(message.type)) upsert(message.call);
      },
      onSnapshot: function (calls, startedAt) {
        var present = new Set();
        calls.forEach(function (data) {
          present.add(data.id);
          upsert(data);
        });
        // Cards the server no longer lists are over, unless a message came in since we asked.
        cards.forEach(function (entry, id) {
          if (!present.has(id) && entry.touched < startedAt) {
            end(Object.assign({}, entry.data, { phase: "ended" }));
          }
        });
      },
    };
  }

  // --- the live board -------------------------------------------------------------------------------------

  function boardView() {
    var body = document.getElementById("board-rows");
    var emptyNode = document.getElementById("board-empty");
    var countNode = document.getElementById("board-count");
    var rows = new Map(); // call id -> {data, node, touched}
    var removed = new Map();

    function refresh() {
      emptyNode.hidden = rows.size > 0;
      countNode.textContent = String(rows.size);
    }

    function renderRow(data) {
      var operators = h("td", { className: "operators" });
      if (!data.operators.length) operators.appendChild(h("span", { className: "muted", text: S.nobody }));
      data.operators.forEach(function (person, index) {
        if (index) operators.appendChild(document.createTextNode(", "));
        operators.appendChild(h("span", { className: "who phase-" + person.phase, title: label("phase", person.phase), text: person.name }));
      });
      var client = h("td", null, h("span", { className: "phone", text: data.number_display || "—" }));
      if (data.contact) {
        client.insertBefore(h("br"), client.firstChild);
        client.insertBefore(h("a", { href: data.contact.url, text: data.contact.name }), client.firstChild);
      }
      var timer = h("span", { className: "timer" });
      return h(
        "tr",
        { className: "status-" + data.status, "data-call-id": data.id },
        h("td", { text: when(data.started_at, false) || "—" }),
        h("td", { text: label("direction", data.direction) }),
        client,
        h("td", { text: data.line_display || "—" }),
        operators,
        h("td", null, h("span", { className: "badge badge-" + data.status, text: label("status", data.status) }), " ", timer),
        h("td", null, h("a", { href: data.url, text: S.details }))
      );
    }

    function tick() {
      rows.forEach(function (entry) {
        var timer = entry.node.querySelector(".timer");
        var since = entry.data.answered_at || entry.data.started_at;
        timer.textContent = duration(elapsedSince(since, entry.firstSeen));
      });
    }

    function update(data) {
      var gone = removed.get(data.id);
      if (gone !== undefined && gone >= data.version) return;
      var current = rows.get(data.id);
      if (current && current.data.version > data.version) return;
      var node = renderRow(data);
      if (current) {
        current.node.replaceWith(node);
        current.node = node;
        current.data = data;
        current.touched = performance.now();
      } else {
        rows.set(data.id, { data: data, node: node, touched: performance.now(), firstSeen: serverNow() });
        body.appendChild(node);
      }
      tick();
      refresh();
    }

    function remove(data) {
      removed.set(data.id, data.version);
      if (removed.size > 2000) removed.delete(removed.keys().next().value);
      var current = rows.get(data.id);
      if (current && current.data.version <= data.version) {
        current.node.remove();
        rows.delete(data.id);
      }
      refresh();
    }

    setInterval(tick, 1000);
    refresh();
    return {
      onMessage: function (message) {
        if (!message.call) return;
        if (message.type === "board.update") update(message.call);
        else if (message.type === "board.remove") remove(message.call);
      },
      onSnapshot: function (calls, startedAt) {
        var present = new Set();
        calls.forEach(function (data) {
          present.add(data.id);
          update(data);
        });
        rows.forEach(function (entry, id) {
          if (!present.has(id) && entry.touched < startedAt) remove(entry.data);
        });
      },
    };
  }

  var view = config.mode === "board" ? boardView() : workspaceView();
  connect();
})();
