/* Coordination of the operator's tabs (one browser): what one tab did to the desk, the others do too —
 * a wrap-up saved or put off closes the card everywhere, a contact named in one tab is named in all, a
 * task done refreshes every tab's reminders. BroadcastChannel where the browser has it, else the
 * localStorage "storage" event (which fires in the other tabs only).
 */
const CHANNEL = "mttcrm-desk";
const STORAGE_KEY = "mttcrm.desk.message";
const DISMISSED_PREFIX = "mttcrm.wrapup.dismissed.";
const DISMISS_KEEP_MS = 24 * 3600 * 1000;

const listeners = [];
let channel = null;

if ("BroadcastChannel" in window) {
  try {
    channel = new BroadcastChannel(CHANNEL);
    channel.onmessage = function (event) {
      deliver(event.data);
    };
  } catch (err) {
    channel = null;
  }
}
if (!channel) {
  window.addEventListener("storage", function (event) {
    if (event.key !== STORAGE_KEY || !event.newValue) return;
    try {
      deliver(JSON.parse(event.newValue).message);
    } catch (err) { /* not ours */ }
  });
}

function deliver(message) {
  if (!message || typeof message.type !== "string") return;
  listeners.forEach(function (listener) {
    listener(message);
  });
}

export function onTabMessage(listener) {
  listeners.push(listener);
}

// Tell the other tabs (this tab has done it already).
export function tellTabs(message) {
  if (channel) {
    channel.postMessage(message);
    return;
  }
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ message: message, at: Date.now() }));
  } catch (err) { /* private mode: the other tabs learn it on their next resync */ }
}

// Closed here: remembered by this page too, where localStorage cannot keep it (private mode), so the next
// resync does not bring the card back.
const dismissedHere = new Set();

// A wrap-up put off ("Later"), a missed notice closed: no tab shows its card again (a wrap-up is then
// finished from the call log).
export function dismissWrapUp(callId) {
  dismissedHere.add(String(callId));
  try {
    localStorage.setItem(DISMISSED_PREFIX + callId, String(Date.now()));
  } catch (err) { /* this tab only */ }
}

// Another tab closed the card (a wrap-up saved or put off, a missed notice closed): not brought back here.
export function closedInAnotherTab(callId) {
  dismissedHere.add(String(callId));
}

export function wrapUpDismissed(callId) {
  if (dismissedHere.has(String(callId))) return true;
  try {
    return localStorage.getItem(DISMISSED_PREFIX + callId) !== null;
  } catch (err) {
    return false;
  }
}

export function forgetOldDismissals() {
  try {
    var cutoff = Date.now() - DISMISS_KEEP_MS;
    for (var i = localStorage.length - 1; i >= 0; i--) {
      var key = localStorage.key(i);
      if (key && key.indexOf(DISMISSED_PREFIX) === 0 && Number(localStorage.getItem(key)) < cutoff) {
        localStorage.removeItem(key);
      }
    }
  } catch (err) { /* nothing to clean */ }
}
