/* Click-to-call: every `.phone[data-e164]` on a page becomes a call button (guide §5.2).
 *
 * A click POSTs the number to the dial URL (the script tag's data-dial-url, default /calls/dial/) with
 * the CSRF token; the server asks MTT to ring the operator's phone and answers in words, which are
 * shown in a small notice ("Your phone is ringing — pick up to call …", or why it cannot). The server
 * also makes a double click place one call; the button is disabled while a request is in flight.
 * Numbers added later (the screen-pop card) are picked up too. A number inside a link keeps the link
 * and gets a small separate call button after it. No dependencies. Its look is css/click_to_call.css,
 * linked by the page (the Content-Security-Policy refuses injected <style>).
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var data = (script && script.dataset) || {};
  var DIAL_URL = data.dialUrl || "/calls/dial/";
  var LABEL_CALL = data.labelCall || "Call this number";
  var LABEL_CALLING = data.labelCalling || "Calling…";
  var LABEL_OFFLINE = data.labelOffline || "The CRM cannot be reached; check your connection.";
  var LABEL_CLOSE = data.labelClose || "Close";
  var SELECTOR = ".phone[data-e164]";
  var DONE = "c2cReady";

  // The CSRF cookie is HttpOnly (settings): the token comes from a form of the page ({% csrf_token %}).
  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  var hideTimer = null;

  function notice(text, isError) {
    var box = document.getElementById("c2c-notice");
    if (!box) {
      box = document.createElement("div");
      box.id = "c2c-notice";
      box.setAttribute("role", "status");
      box.setAttribute("aria-live", "polite");
      var message = document.createElement("span");
      message.className = "c2c-message";
      var close = document.createElement("button");
      close.type = "button";
      close.setAttribute("aria-label", LABEL_CLOSE);
      close.textContent = "×";
      close.addEventListener("click", function () {
        box.hidden = true;
      });
      box.appendChild(message);
      box.appendChild(close);
      document.body.appendChild(box);
    }
    box.className = isError ? "error" : "ok";
    box.querySelector(".c2c-message").textContent = text;
    box.hidden = false;
    if (hideTimer) clearTimeout(hideTimer);
    hideTimer = setTimeout(function () {
      box.hidden = true;
    }, isError ? 15000 : 10000);
  }

  function numberOf(el) {
    return el.getAttribute("data-e164") || el.getAttribute("data-dial") || "";
  }

  function setBusy(el, busy) {
    if (el.tagName === "BUTTON") el.disabled = busy;
    el.setAttribute("aria-busy", busy ? "true" : "false");
    el.title = busy ? LABEL_CALLING : LABEL_CALL;
  }

  function dial(el) {
    if (el.getAttribute("aria-busy") === "true") return;
    var number = el.getAttribute("data-c2c-number");
    if (!number) return;
    setBusy(el, true);
    notice(LABEL_CALLING, false);
    var body = new URLSearchParams();
    body.set("number", number);
    fetch(DIAL_URL, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "X-CSRFToken": csrfToken(),
        "X-Requested-With": "XMLHttpRequest",
        Accept: "application/json",
      },
      body: body,
    })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return { ok: false, error: LABEL_OFFLINE + " (HTTP " + response.status + ")" };
          });
      })
      .then(function (answer) {
        if (answer && answer.ok) notice(answer.message, false);
        else notice((answer && answer.error) || LABEL_OFFLINE, true);
      })
      .catch(function () {
        notice(LABEL_OFFLINE, true);
      })
      .then(function () {
        setBusy(el, false);
      });
  }

  function decorate(phone) {
    if (phone.dataset[DONE]) return;
    var number = numberOf(phone);
    if (!number) return;
    phone.dataset[DONE] = "1";
    var link = phone.closest("a");
    if (link) {
      // Keep the link (e.g. to the contact) and offer the call next to it.
      var button = document.createElement("button");
      button.type = "button";
      button.className = "c2c-button";
      button.textContent = "\u260E\uFE0E";
      button.title = LABEL_CALL;
      button.setAttribute("aria-label", LABEL_CALL + " " + phone.textContent.trim());
      button.setAttribute("data-c2c-number", number);
      link.insertAdjacentElement("afterend", button);
      return;
    }
    phone.classList.add("c2c");
    phone.setAttribute("role", "button");
    phone.setAttribute("tabindex", "0");
    phone.title = LABEL_CALL;
    phone.setAttribute("data-c2c-number", number);
  }

  function scan(root) {
    if (root.nodeType !== 1) return;
    if (root.matches && root.matches(SELECTOR)) decorate(root);
    var found = root.querySelectorAll ? root.querySelectorAll(SELECTOR) : [];
    for (var i = 0; i < found.length; i++) decorate(found[i]);
  }

  function target(event) {
    return event.target && event.target.closest ? event.target.closest("[data-c2c-number]") : null;
  }

  function start() {
    scan(document.body);
    document.addEventListener("click", function (event) {
      var el = target(event);
      if (!el) return;
      event.preventDefault();
      dial(el);
    });
    document.addEventListener("keydown", function (event) {
      var el = target(event);
      if (!el || el.tagName === "BUTTON" || (event.key !== "Enter" && event.key !== " ")) return;
      event.preventDefault();
      dial(el);
    });
    if (window.MutationObserver) {
      new MutationObserver(function (mutations) {
        mutations.forEach(function (m) {
          m.addedNodes.forEach(scan);
        });
      }).observe(document.body, { childList: true, subtree: true });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
