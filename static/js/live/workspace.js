/* The operator's workspace: the cards of the calls ringing or talking at their workplace, and their
 * recent calls with a note field each.
 */
import { alertNewCall, closeDesktopNote, forgetOldClaims } from "./alerts.js";
import { S, config, csrfToken, duration, elapsedSince, h, label, phaseLabel, serverNow, when } from "./common.js";

const RECENT_KEEP = 10;

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

export function workspaceView() {
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
