/* The supervisors' live board: every active call of the company, live. */
import { S, duration, elapsedSince, h, label, serverNow, when } from "./common.js";

export function boardView() {
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
