/* Small behaviours of every page. No inline handlers in the templates (Content-Security-Policy):
 * a <select data-autosubmit> (the language switch) submits its form when changed; a
 * <button class="play-recording" data-src> puts the recording's player in its place and starts it (players
 * on demand: a list of full players does not fit a laptop's width).
 */
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field && field.matches && field.matches("select[data-autosubmit]") && field.form) {
      field.form.submit();
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest("button.play-recording[data-src]") : null;
    if (!button) return;
    var audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "none";
    audio.src = button.getAttribute("data-src");
    audio.className = "player-audio";
    audio.setAttribute("aria-label", button.getAttribute("aria-label") || "");
    button.replaceWith(audio);
    var playing = audio.play();
    if (playing && playing.catch) playing.catch(function () { /* the controls are there to press */ });
  });
})();
