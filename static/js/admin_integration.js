/* Integration admin page: the Redirect URI field selects itself on click, and its Copy button copies it.
 * A file of its own, not inline handlers: the Content-Security-Policy allows scripts from this host only.
 */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!target || !target.closest) return;
    var field = target.closest("[data-select-on-click]");
    if (field) {
      // After Chromium's own handling: a click inside a selection collapses it once the event is over.
      window.setTimeout(function () {
        field.select();
      }, 0);
      return;
    }
    var button = target.closest("[data-copy-from]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-from"));
    if (!source) return;
    source.select();
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(source.value);
    } else {
      document.execCommand("copy");
    }
  });
})();
