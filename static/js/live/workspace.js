/* The operator's desk: the cards of the calls ringing or talking at their workplace, on every page (the
 * call panel docked beside the page, config.mode "desk": panel.js) or in the workspace's "Calls right now"
 * (mode "workspace", which also lists the recent calls with a note field each). After hang-up the card of
 * a call the operator took stays for the wrap-up until it is saved or put off, in every tab at once
 * (tabs.js) — and, once saved, on every device of the operator (the server's call.wrapped_up); the server's
 * resync brings it back on the next page, so opening the contact or the call from the card keeps the card.
 */
import { alertNewCall, closeDesktopNote, forgetOldClaims } from "./alerts.js";
import { S, config, csrfToken, duration, elapsedSince, h, label, phaseLabel, serverNow, when } from "./common.js";
import { nameContactForm, refreshDesk, wrapUpForm } from "./desk.js";
import { dockedPanel } from "./panel.js";
import { closedInAnotherTab, dismissWrapUp, forgetOldDismissals, onTabMessage, tellTabs, wrapUpDismissed } from "./tabs.js";

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
      // The player on demand (app.js inserts it on click): a row of players does not fit a laptop.
      slot.appendChild(
        h("button", { type: "button", className: "play-recording", "data-src": item.recording_url, "aria-label": S.play, title: S.play, text: "▶" })
      );
    }
    row.appendChild(slot);
    list.appendChild(row);
  });
  return list;
}

// The header of an ended card: "Звонок завершён" — for an answered call too, whose status word ("Отвечен")
// left an operator wondering whether the line was still open — or how it ended when nobody talked
// ("Пропущен"). Never the call's live status ("Разговор") above a wrap-up form, even while the PBX's
// finished is late or never comes (a click-to-call's first leg).
function endedLabel(data) {
  var talked = data.status === "answered" || data.status === "ringing" || data.status === "in_progress";
  return (!talked && label("status", data.status)) || S.phase.ended;
}

function keepTyped(oldNode, newNode) {
  // A re-rendered card keeps what the operator is typing in its forms.
  oldNode.querySelectorAll("input[name], textarea[name], select[name]").forEach(function (input) {
    var twin = newNode.querySelector('[name="' + input.name + '"]');
    if (twin && input.value) twin.value = input.value;
  });
}

function renderCard(data, handlers) {
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
  var wrapping = data.phase === "ended";
  if (wrapping) links.appendChild(h("button", { type: "button", className: "link close-card", text: S.close, "aria-label": S.close }));

  var timer = h("span", { className: "timer", hidden: data.phase !== "connected" });
  var card = h(
    "article",
    {
      className: "call-card phase-" + data.phase + " dir-" + data.direction,
      "data-call-id": data.id,
      "data-phase": data.phase,
    },
    h(
      "header",
      null,
      h("span", { className: "phase-label", text: wrapping ? endedLabel(data) : phaseLabel(data) }),
      timer
    ),
    h("div", { className: "number phone-text", text: data.number_display || data.number || S.unknown_number }),
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
    data.name_contact_url ? nameContactForm(data, handlers.named) : null,
    wrapping ? wrapUpForm(data, handlers.wrapped, handlers.later) : null,
    wrapping ? null : h("div", { className: "history" }, h("h3", { text: S.recent }), recentCallsList(data.recent)),
    links
  );
  if (wrapping) {
    card.classList.add("wrap-up-card");
    card.querySelector(".close-card").addEventListener("click", handlers.later);
  }
  return card;
}

// A call that rang here and nobody answered stays on the desk as a red notice until it is closed (in every
// tab at once): missed looks missed, live, on any page. The resync brings it back on the next page or after
// a reload (calls.live.missed_cards_for_user) until it is closed, its client is reached or
// CALLS_WRAPUP_CARD_MINUTES pass.
function renderMissed(data, onClose) {
  var contact = data.contact;
  var close = h("button", { type: "button", className: "link close-card", text: S.close, "aria-label": S.close });
  close.addEventListener("click", onClose);
  return h(
    "article",
    { className: "call-card phase-missed dir-" + data.direction, "data-call-id": data.id, "data-phase": "missed" },
    h("header", null, h("span", { className: "phase-label", text: S.call_missed }), h("time", { text: when(data.started_at, true) })),
    h("div", { className: "number phone-text", text: data.number_display || data.number || S.unknown_number }),
    contact && contact.name ? h("div", { className: "who" }, h("a", { className: "contact-name", href: contact.url, text: contact.name })) : null,
    h(
      "footer",
      { className: "card-links" },
      // "Call back" calls back: click_to_call.js dials [data-c2c-number] (POST /calls/dial/, the operator's
      // phone rings, a notice says so or why not), as a number's call button does on any page.
      data.number
        ? h("button", { type: "button", className: "button call-back", "data-c2c-number": data.number, text: S.call_back })
        : null,
      h("a", { href: data.url, text: S.details }),
      close
    )
  );
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
      h("a", { className: "details", href: data.url, text: S.details }),
      data.comment ? h("span", { className: "call-comment", text: " · " + data.comment }) : null
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
  var cards = new Map(); // call id -> {data, node, touched, connectedLocal, wrapping, missed}
  var ended = new Map(); // call id -> version this page saw it end with (stale messages are ignored)
  // The recent calls this page was rendered with (call id -> version): those calls had ended before the page
  // loaded, but the page has not dealt with their ends — a wrap-up still waiting for one of them comes with
  // the first resync at the same version, and must show as on any other page.
  var listed = new Map();
  // Wrap-ups this page knows are saved (call id -> the call's version after the save: the save's own answer,
  // another tab's word, a message saying wrapped_up). A card of the call at that version or older — a resync
  // or a push sent before the save and arriving after it — is out of date and never brings the card back.
  var saved = new Map();

  function wrappedUpAt(id, version) {
    if (typeof version !== "number" || !isFinite(version)) return;
    if (!(saved.get(id) >= version)) saved.set(id, version);
    if (saved.size > 500) saved.delete(saved.keys().next().value);
  }

  // On every page but the workspace the cards are the docked call panel (panel.js).
  var panel = dockedPanel(cardsNode);

  function refreshEmpty() {
    if (emptyNode) emptyNode.hidden = cards.size > 0;
    if (recentEmpty) recentEmpty.hidden = recentNode.children.length > 0;
    document.body.classList.toggle("desk-has-cards", cards.size > 0);
    panel.refresh(cards.size);
  }

  function addRecent(data) {
    if (!recentNode) return;
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

  // The card of an ended call stays for its wrap-up: the operator took it, nobody wrapped it up yet and
  // it was not put off ("Later") in any tab.
  function needsWrapUp(data) {
    return data.operator_id === config.user_id && !data.wrapped_up && !wrapUpDismissed(data.id);
  }

  function removeCard(id) {
    var current = cards.get(id);
    if (!current) return;
    current.node.remove();
    cards.delete(id);
    refreshEmpty();
  }

  function handlersFor(id) {
    return {
      wrapped: function (json) {
        var call = json && json.call;
        var current = cards.get(id);
        // The server's version after the save; without one, at least what this card showed.
        var version = call && typeof call.version === "number" ? call.version : current && current.data.version;
        wrappedUpAt(id, version);
        removeCard(id);
        tellTabs({ type: "closed", id: id, version: version });
        refreshDesk();
        if (call && recentNode) {
          var entry = recentNode.querySelector('[data-call-id="' + id + '"] .recent-line');
          if (entry && call.comment) entry.appendChild(h("span", { className: "call-comment", text: " · " + call.comment }));
        }
      },
      later: function () {
        dismissWrapUp(id);
        removeCard(id);
        tellTabs({ type: "closed", id: id });
      },
      named: function (contact) {
        named(id, contact);
        tellTabs({ type: "named", id: id, contact: contact });
      },
    };
  }

  function named(id, contact) {
    var current = cards.get(id);
    if (!current) return;
    var data = Object.assign({}, current.data, { name_contact_url: null });
    data.contact = Object.assign({}, data.contact || {}, { name: contact.name || contact.company, company: contact.company });
    current.data = data;
    var node = renderCard(data, handlersFor(id));
    keepTyped(current.node, node);
    current.node.replaceWith(node);
    current.node = node;
    panel.foldOlder();
  }

  function showWrapUp(data, current) {
    if (current && current.wrapping) {
      current.data = Object.assign({}, current.data, data, { recent: current.data.recent });
      current.node.querySelector(".phase-label").textContent = endedLabel(data);
      return;
    }
    var node = renderCard(data, handlersFor(data.id));
    if (current) {
      keepTyped(current.node, node);
      current.node.replaceWith(node);
      current.node = node;
      current.data = data;
      current.wrapping = true;
      current.touched = performance.now();
    } else {
      cards.set(data.id, { data: data, node: node, touched: performance.now(), connectedLocal: null, wrapping: true });
      cardsNode.insertBefore(node, cardsNode.firstChild);
      panel.newCard(data);
    }
  }

  function showMissed(data, current) {
    var node = renderMissed(data, function () {
      dismissWrapUp(data.id);
      removeCard(data.id);
      tellTabs({ type: "closed", id: data.id });
    });
    if (current) {
      current.node.replaceWith(node);
      Object.assign(current, { node: node, data: data, wrapping: true, missed: true, touched: performance.now() });
    } else {
      cards.set(data.id, { data: data, node: node, touched: performance.now(), wrapping: true, missed: true });
      cardsNode.insertBefore(node, cardsNode.firstChild);
      panel.newCard(data);
    }
  }

  function end(data) {
    ended.set(data.id, data.version);
    if (ended.size > 500) ended.delete(ended.keys().next().value);
    var current = cards.get(data.id);
    closeDesktopNote(data.id);
    if (current) {
      // The hide message is slim on history: keep what the card knew.
      data = Object.assign({}, current.data, data, { recent: current.data.recent });
    }
    var missed = (data.status === "missed" || data.status === "not_answered") && data.direction === "incoming";
    if (cardsNode && needsWrapUp(data)) {
      showWrapUp(data, current);
    } else if (cardsNode && missed && !wrapUpDismissed(data.id)) {
      showMissed(data, current);
    } else if (current) {
      current.node.remove();
      cards.delete(data.id);
    }
    // A notice brought back by the resync is an old call: the recent calls have it, or newer ones.
    if (!data.missed_notice) addRecent(data);
    refreshEmpty();
    // A call's end may change the callback queue and the reminders: the badges follow.
    refreshDesk();
  }

  function upsert(data) {
    var savedAt = saved.get(data.id);
    if (savedAt !== undefined && data.version <= savedAt) return;
    if (data.wrapped_up) wrappedUpAt(data.id, data.version);
    var current = cards.get(data.id);
    var seenEnd = ended.get(data.id);
    var listedAt = listed.get(data.id);
    // A live message of a call that had ended when the page loaded is old; its ended card (the wrap-up,
    // the missed notice) is what the server says the desk should show now.
    if (listedAt !== undefined && listedAt >= data.version && data.phase !== "ended") return;
    // A missed notice the resync brings back is shown even though the page knew the call had ended (its
    // recent calls list it) — unless it was closed, here or in another tab.
    var restore = data.missed_notice && !current;
    if (restore && (!cardsNode || wrapUpDismissed(data.id))) return;
    if (seenEnd !== undefined && seenEnd >= data.version && !restore) return;
    if (current && current.data.version > data.version) return;
    if (data.phase === "ended") {
      end(data);
      return;
    }
    if (!cardsNode) return;
    var node = renderCard(data, handlersFor(data.id));
    if (current) {
      if (current.data.phase !== "connected" && data.phase === "connected") current.connectedLocal = serverNow();
      keepTyped(current.node, node);
      current.node.replaceWith(node);
      current.node = node;
      current.data = data;
      current.wrapping = false;
      current.touched = performance.now();
    } else {
      cards.set(data.id, {
        data: data, node: node, touched: performance.now(),
        connectedLocal: serverNow(), wrapping: false,
      });
      cardsNode.insertBefore(node, cardsNode.firstChild);
      panel.newCard(data);
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

  // The server's word that the call's wrap-up was saved — on another device of this operator, by a
  // supervisor, through the API, or in this very browser (call.wrapped_up, after the save's commit): the
  // wrap-up card closes as another tab's "closed" closes it, and no card of the call at that version or
  // older (a resync or a push sent before the save) brings it back. A card of a call still going on stays:
  // its end will say the call is wrapped up. A missed notice stays: it goes when closed or called back.
  function wrappedUpElsewhere(call) {
    if (!call || typeof call.id !== "number") return;
    wrappedUpAt(call.id, call.version);
    var current = cards.get(call.id);
    if (!current || !current.wrapping || current.missed) return;
    closedInAnotherTab(call.id);
    removeCard(call.id);
    // A follow-up task may have come with it: the badges and reminders follow.
    refreshDesk();
  }

  onTabMessage(function (message) {
    if (message.type === "closed") {
      closedInAnotherTab(message.id);
      wrappedUpAt(message.id, message.version);
      removeCard(message.id);
    }
    if (message.type === "named" && message.contact) named(message.id, message.contact);
  });

  (config.recent || []).slice().reverse().forEach(function (data) {
    listed.set(data.id, data.version);
    addRecent(data);
  });
  refreshEmpty();
  refreshDesk();
  setInterval(tick, 1000);
  setInterval(function () {
    forgetOldClaims();
    forgetOldDismissals();
  }, 10 * 60 * 1000);

  return {
    onMessage: function (message) {
      if (message.call && /^call\.(show|update|hide)$/.test(message.type)) upsert(message.call);
      if (message.type === "call.wrapped_up") wrappedUpElsewhere(message.call);
    },
    onSnapshot: function (calls, startedAt) {
      var present = new Set();
      calls.forEach(function (data) {
        present.add(data.id);
        upsert(data);
      });
      // Cards the server no longer lists are over (a wrap-up card: saved elsewhere or too old), unless a
      // message came in since we asked.
      cards.forEach(function (entry, id) {
        if (present.has(id) || entry.touched >= startedAt || entry.missed) return;
        if (entry.wrapping) removeCard(id);
        else end(Object.assign({}, entry.data, { phase: "ended" }));
      });
      refreshDesk();
    },
  };
}
