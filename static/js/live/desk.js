/* The desk's pieces around the cards, on every page: the menu's live badge counts and the reminders of
 * due follow-up tasks (GET config.desk_url on every resync and after every call's end), and the small
 * forms of a card — the wrap-up after hang-up and naming a caller the CRM only knows by number.
 */
import { S, config, csrfToken, h, when } from "./common.js";
import { onTabMessage, tellTabs } from "./tabs.js";

export function postForm(url, fields) {
  var body = new FormData();
  Object.keys(fields).forEach(function (key) {
    if (fields[key] !== null && fields[key] !== undefined) body.append(key, fields[key]);
  });
  return fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    body: body,
  }).then(function (response) {
    return response
      .json()
      .catch(function () {
        return {};
      })
      .then(function (json) {
        return { ok: response.ok && json.ok, json: json };
      });
  });
}

function setBadge(name, count) {
  document.querySelectorAll('[data-badge="' + name + '"]').forEach(function (badge) {
    badge.textContent = String(count || 0);
    badge.hidden = !count;
  });
}

const HIDDEN_KEY = "mttcrm.reminders.hidden";

// The desk is docked at the page's right, the page making room for it (body.desk-docked), while it shows
// anything: a call card (the panel says, dockDesk(true/false)) or the reminders of due tasks. Floating
// over the page's corner, the reminders covered the call tables' last columns and their links.
let deskHasCards = false;

export function dockDesk(hasCards) {
  if (hasCards !== undefined) deskHasCards = hasCards;
  var reminders = document.getElementById("desk-reminders");
  var shown = !!reminders && !reminders.hidden && !!reminders.closest(".desk");
  document.body.classList.toggle("desk-docked", deskHasCards || shown);
}

function hiddenTasks() {
  try {
    return JSON.parse(localStorage.getItem(HIDDEN_KEY) || "[]");
  } catch (err) {
    return [];
  }
}

function renderReminders(node, due) {
  node.textContent = "";
  // "Hide" puts the reminders away until another task comes due (in every tab: localStorage).
  var hidden = hiddenTasks();
  var fresh = due.some(function (task) {
    return hidden.indexOf(task.id) < 0;
  });
  node.hidden = !due.length || !fresh;
  dockDesk();
  if (node.hidden) return;
  var hide = h("button", { type: "button", className: "link hide-reminders", text: S.hide });
  hide.addEventListener("click", function () {
    try {
      localStorage.setItem(HIDDEN_KEY, JSON.stringify(due.map(function (task) { return task.id; })));
    } catch (err) { /* this page only */ }
    node.hidden = true;
    dockDesk();
    tellTabs({ type: "desk" });
  });
  node.appendChild(h("div", { className: "reminders-head" }, h("h2", { text: S.tasks_due }), hide));
  var list = h("ul", { className: "reminder-list" });
  due.forEach(function (task) {
    var done = h("button", { type: "button", className: "button secondary", text: S.task_done });
    done.addEventListener("click", function () {
      done.disabled = true;
      postForm(task.done_url, {}).then(function (answer) {
        if (answer.ok) {
          tellTabs({ type: "desk" });
          refreshDesk();
        } else {
          done.disabled = false;
        }
      });
    });
    list.appendChild(
      h(
        "li",
        { className: "reminder", "data-task": task.id },
        h("time", { text: when(task.due_at, true) }),
        " ",
        task.contact ? h("a", { href: task.url, text: task.contact }) : null,
        task.note ? h("span", { className: "reminder-note", text: task.note }) : null,
        done
      )
    );
  });
  node.appendChild(list);
  node.appendChild(h("a", { href: config.tasks_url, text: S.all_tasks }));
}

let refreshing = false;
let again = false;

export function refreshDesk() {
  if (!config || !config.desk_url) return;
  if (refreshing) {
    again = true; // asked while a refresh is on its way: once more after it, with the newest counts
    return;
  }
  refreshing = true;
  fetch(config.desk_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      return response.ok ? response.json() : null;
    })
    .then(function (body) {
      if (!body || !body.ok) return;
      setBadge("callbacks", body.callbacks);
      setBadge("tasks", body.tasks_due);
      var node = document.getElementById("desk-reminders");
      if (node) renderReminders(node, body.due || []);
    })
    .catch(function () { /* offline: the next resync tries again */ })
    .then(function () {
      refreshing = false;
      if (again) {
        again = false;
        refreshDesk();
      }
    });
}

onTabMessage(function (message) {
  if (message.type === "desk") refreshDesk();
});

function field(labelText, control) {
  return h("label", { className: "field" }, h("span", { text: labelText }), control);
}

// The wrap-up form of an ended call's card. onDone(json) after a save; onLater() when put off.
export function wrapUpForm(data, onDone, onLater) {
  var result = h("select", { name: "result" }, h("option", { value: "", text: S.no_result }));
  (config.results || []).forEach(function (item) {
    result.appendChild(h("option", { value: String(item.id), text: item.name, selected: item.id === data.result_id }));
  });
  var comment = h("textarea", { name: "comment", rows: "2", maxlength: "5000" });
  comment.value = data.comment || "";
  var dueAt = h("input", { type: "datetime-local", name: "follow_up_at" });
  var person = h("select", { name: "follow_up_for" }, h("option", { value: "", text: S.me }));
  (config.people || []).forEach(function (item) {
    person.appendChild(h("option", { value: String(item.id), text: item.name }));
  });
  var note = h("input", { type: "text", name: "follow_up_note", maxlength: "2000" });
  var status = h("p", { className: "form-status", role: "status" });
  var save = h("button", { type: "submit", text: S.save_wrap_up });
  var later = h("button", { type: "button", className: "button secondary", text: S.later });
  var form = h(
    "form",
    { className: "wrap-up-form" },
    h("h3", { text: S.wrap_up }),
    field(S.result, result),
    field(S.comment, comment),
    h("div", { className: "follow-up" }, field(S.follow_up_at, dueAt), field(S.follow_up_for, person)),
    field(S.follow_up_note, note),
    h("div", { className: "form-buttons" }, save, later),
    status
  );
  // A refusal's words go under the field they are about (the server's field names), the rest to the status.
  var controls = { result: result, comment: comment, follow_up_at: dueAt, follow_up_for: person, follow_up_note: note };
  var fieldErrors = [];
  function clearFieldErrors() {
    fieldErrors.forEach(function (node) {
      node.remove();
    });
    fieldErrors = [];
    Object.keys(controls).forEach(function (key) {
      controls[key].removeAttribute("aria-invalid");
    });
  }
  function showFieldErrors(errors) {
    var rest = [];
    Object.keys(errors).forEach(function (key) {
      var control = controls[key];
      if (!control) {
        rest = rest.concat(errors[key]);
        return;
      }
      var words = h("span", { className: "error field-error", text: errors[key].join(" ") });
      control.parentNode.appendChild(words);
      control.setAttribute("aria-invalid", "true");
      fieldErrors.push(words);
    });
    return rest;
  }
  later.addEventListener("click", onLater);
  // The card is of a call not wrapped up yet: a wrap-up someone else saved meanwhile (a supervisor, the
  // push closing this card lost) is not silently overwritten — the server answers 409 in words.
  var seen = data.wrapped_up ? "" : "none";
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    save.disabled = true;
    status.textContent = "";
    clearFieldErrors();
    postForm(data.wrap_up_url, {
      result: result.value,
      comment: comment.value,
      follow_up_at: dueAt.value,
      follow_up_for: dueAt.value ? person.value : "",
      follow_up_note: note.value,
      seen: seen,
    })
      .then(function (answer) {
        if (answer.ok) {
          onDone(answer.json);
          return;
        }
        // 409: saved meanwhile by someone else. The words say who; saving again replaces theirs knowingly.
        if (answer.json && typeof answer.json.seen === "string") seen = answer.json.seen;
        var texts = showFieldErrors((answer.json && answer.json.errors) || {});
        var said = texts.length ? texts.join(" ") : answer.json && answer.json.error;
        status.textContent = said || S.wrap_up_failed;
        status.className = "form-status error";
      })
      .catch(function () {
        status.textContent = S.wrap_up_failed;
        status.className = "form-status error";
      })
      .then(function () {
        save.disabled = false;
      });
  });
  return form;
}

// "Name this client": the contact the CRM made from the call's number gets a name and a company in place.
export function nameContactForm(data, onNamed) {
  var name = h("input", { type: "text", name: "name", maxlength: "200", autocomplete: "off" });
  var company = h("input", { type: "text", name: "company", maxlength: "200", autocomplete: "off" });
  var status = h("p", { className: "form-status", role: "status" });
  var save = h("button", { type: "submit", text: S.save });
  var form = h(
    "form",
    { className: "name-contact-form" },
    h("h3", { text: S.name_contact }),
    h("div", { className: "follow-up" }, field(S.contact_name, name), field(S.company, company)),
    save,
    status
  );
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    save.disabled = true;
    postForm(data.name_contact_url, { name: name.value, company: company.value })
      .then(function (answer) {
        if (answer.ok) {
          onNamed(answer.json.contact);
          return;
        }
        status.textContent = (answer.json && answer.json.error) || S.contact_failed;
        status.className = "form-status error";
      })
      .catch(function () {
        status.textContent = S.contact_failed;
        status.className = "form-status error";
      })
      .then(function () {
        save.disabled = false;
      });
  });
  return form;
}
