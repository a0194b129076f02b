/* Alerts of a new call: a short sound and a desktop notification (while the tab is hidden), both from one
 * tab of the operator's (the first to claim the call); the operator's choices (sound on/off, notification
 * permission).
 */
import { S } from "./common.js";

const SOUND_KEY = "mttcrm.sound";
const soundToggle = document.getElementById("sound-toggle");
let audio = null;

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

const permissionButton = document.getElementById("notify-permission");

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

// One tab per call rings and notifies. localStorage alone cannot decide it: Chromium's tabs may live in
// different processes, and a write there reaches the other tabs a moment later. The Web Locks API can:
// the first tab takes the call's lock without waiting and holds it for a minute, the others find it taken.
// The localStorage mark keeps a page loaded later (the operator opened the contact) from ringing again.
const CLAIM_HOLD_MS = 60000;
const CLAIM_KEEP_MS = 10 * 60000;

function claimAlert(callId) {
  var key = "mttcrm.alerted." + callId;
  function marked() {
    try {
      return Date.now() - (Number(localStorage.getItem(key)) || 0) < CLAIM_KEEP_MS;
    } catch (err) {
      return false;
    }
  }
  function mark() {
    try {
      localStorage.setItem(key, String(Date.now()));
    } catch (err) { /* private mode: this tab only */ }
  }
  if (navigator.locks && navigator.locks.request) {
    return new Promise(function (resolve) {
      navigator.locks
        .request("mttcrm-alert-" + callId, { ifAvailable: true }, function (lock) {
          if (!lock || marked()) {
            resolve(false);
            return null;
          }
          mark();
          resolve(true);
          return new Promise(function (release) {
            setTimeout(release, CLAIM_HOLD_MS);
          });
        })
        .catch(function () {
          resolve(false);
        });
    });
  }
  if (marked()) return Promise.resolve(false);
  mark();
  return Promise.resolve(true);
}

export function forgetOldClaims() {
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

const desktopNotes = new Map();

function desktopNote(data) {
  if (!(document.hidden && "Notification" in window && Notification.permission === "granted")) return;
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

// Every tab shows the card; the one tab that claims the call first rings and notifies (the page records
// the calls it rang for in data-rang, which the browser tests read).
export function alertNewCall(data) {
  claimAlert(data.id).then(function (first) {
    if (!first) return;
    var rang = document.body.dataset.rang ? document.body.dataset.rang.split(" ") : [];
    rang.push(String(data.id));
    document.body.dataset.rang = rang.slice(-20).join(" ");
    desktopNote(data);
    if (soundOn()) beep();
  });
}

export function closeDesktopNote(callId) {
  var note = desktopNotes.get(callId);
  if (note) {
    note.close();
    desktopNotes.delete(callId);
  }
}
