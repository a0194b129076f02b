/* The live connection's shared pieces: the page's configuration (json_script "live-config", translated
 * texts included), DOM and formatting helpers, and the server's clock. Data is always inserted as text,
 * never as HTML.
 */
const configNode = document.getElementById("live-config");
export const config = configNode ? JSON.parse(configNode.textContent) : null;
export const S = config ? config.strings : {};
const lang = document.documentElement.lang || "ru";

// A running timer older than this is a clock problem or a lost end, not a call.
const STALE_TIMER_MS = 12 * 3600 * 1000;

export function h(tag, attrs) {
  var node = document.createElement(tag);
  if (attrs) {
    Object.keys(attrs).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : value);
    });
  }
  for (var i = 2; i < arguments.length; i++) {
    var child = arguments[i];
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return "";
  seconds = Math.floor(seconds);
  var hours = Math.floor(seconds / 3600);
  var minutes = Math.floor((seconds % 3600) / 60);
  var secs = seconds % 60;
  var mm = hours ? String(minutes).padStart(2, "0") : String(minutes);
  return (hours ? hours + ":" : "") + mm + ":" + String(secs).padStart(2, "0");
}

// The server's zone (TIME_ZONE, in the page's configuration): the templates' times and these agree.
const timeZone = (config && config.time_zone) || undefined;
const timeFormat = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZone: timeZone });
const dateTimeFormat = new Intl.DateTimeFormat("en-GB", {
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: timeZone,
});

// The one date-time format of the UI (the templates' "d.m.Y H:i"): 03.12.2026 15:07, in the server's zone.
export function when(iso, withDate) {
  if (!iso) return "";
  var date = new Date(iso);
  if (isNaN(date.getTime())) return "";
  if (!withDate) return timeFormat.format(date);
  var p = {};
  dateTimeFormat.formatToParts(date).forEach(function (part) { p[part.type] = part.value; });
  return p.day + "." + p.month + "." + p.year + " " + p.hour + ":" + p.minute;
}

export function label(group, code) {
  return (S[group] && S[group][code]) || code || "";
}

export function phaseLabel(data) {
  if (data.phase === "ringing") {
    return data.direction === "outgoing" ? S.phase.ringing_outgoing : S.phase.ringing_incoming;
  }
  return label("phase", data.phase);
}

export function csrfToken() {
  var input = document.querySelector("#csrf-form [name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

// Server clock minus browser clock, learnt from each message: the timers count in server time.
let clockOffset = 0;

export function serverNow() {
  return Date.now() - clockOffset;
}

export function learnClock(serverMs) {
  if (typeof serverMs === "number" && isFinite(serverMs)) clockOffset = Date.now() - serverMs;
}

// A running timer since an ISO time (the PBX's), falling back to when this page learnt about it.
export function elapsedSince(iso, fallbackMs) {
  var start = iso ? Date.parse(iso) : NaN;
  var now = serverNow();
  if (isNaN(start) || start > now + 5000 || now - start > STALE_TIMER_MS) start = fallbackMs;
  return Math.max(0, (now - start) / 1000);
}
