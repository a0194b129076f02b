/* Small behaviours of every page. No inline handlers in the templates (Content-Security-Policy):
 * a <select data-autosubmit> (the language switch) submits its form when changed.
 */
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field && field.matches && field.matches("select[data-autosubmit]") && field.form) {
      field.form.submit();
    }
  });
})();
