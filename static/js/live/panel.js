/* The docked call panel (config.mode "desk": every page but the workspace). The cards are a column docked
 * at the page's right that the page makes room for (body.desk-docked), so it never covers the page's
 * controls. Only one card is open — the newest, or the one the operator opened; the others fold to their
 * header line. The whole panel folds to a narrow strip ("Hide", remembered per browser) and unfolds by
 * itself when a call rings. On the workspace (no .desk around the cards) every method does nothing.
 */
import { S, h } from "./common.js";
import { dockDesk } from "./desk.js";

const DESK_FOLDED_KEY = "mttcrm.desk.folded";

function deskFolded() {
  try {
    return localStorage.getItem(DESK_FOLDED_KEY) === "1";
  } catch (err) {
    return document.body.classList.contains("desk-folded");
  }
}

export function dockedPanel(cardsNode) {
  var deskNode = cardsNode ? cardsNode.closest(".desk") : null;
  var openId = null; // the card the operator opened; null: the newest
  var deskBar = null;
  var deskCount = null;

  function foldDesk(folded) {
    try {
      if (folded) localStorage.setItem(DESK_FOLDED_KEY, "1");
      else localStorage.removeItem(DESK_FOLDED_KEY);
    } catch (err) { /* this page only */ }
    document.body.classList.toggle("desk-folded", folded);
    if (deskBar) deskBar.querySelector(".desk-fold").setAttribute("aria-expanded", folded ? "false" : "true");
  }

  if (deskNode) {
    var toggle = h("button", { type: "button", className: "desk-fold", "aria-expanded": "true", "aria-controls": "cards" });
    deskCount = h("span", { className: "desk-count" });
    toggle.appendChild(h("span", { className: "desk-fold-label", text: S.desk_title }));
    toggle.appendChild(deskCount);
    toggle.addEventListener("click", function () {
      foldDesk(!document.body.classList.contains("desk-folded"));
    });
    deskBar = h("div", { className: "desk-bar" }, toggle);
    deskNode.insertBefore(deskBar, deskNode.firstChild);
    document.body.classList.toggle("desk-folded", deskFolded());
  }

  // One card open, the others folded to their header line with "Expand".
  function foldOlder() {
    if (!deskNode) return;
    var nodes = Array.prototype.slice.call(cardsNode.children);
    var open = nodes.filter(function (node) {
      return node.dataset.callId === String(openId);
    })[0] || nodes[0];
    nodes.forEach(function (node) {
      var folded = node !== open;
      node.classList.toggle("folded", folded);
      var header = node.querySelector("header");
      var unfold = header && header.querySelector(".unfold-card");
      if (header && !unfold) {
        unfold = h("button", { type: "button", className: "link unfold-card", text: S.open_card });
        unfold.addEventListener("click", function () {
          openId = node.dataset.callId;
          foldOlder();
        });
        header.appendChild(unfold);
      }
      if (unfold) unfold.hidden = !folded;
    });
  }

  return {
    foldOlder: foldOlder,
    // The page has this many cards now: docked (the page makes room) while it has any or the reminders
    // show (desk.js, dockDesk), the count shown.
    refresh: function (count) {
      dockDesk(!!deskNode && count > 0);
      if (deskCount) {
        deskCount.textContent = String(count);
        deskCount.hidden = !count; // docked for the reminders alone: no "0"
      }
      foldOlder();
    },
    // A new card is the one to look at: it opens (the others fold) and the panel unfolds if it rang.
    newCard: function (data) {
      openId = null;
      if (data.phase === "ringing" && deskNode) foldDesk(false);
    },
  };
}
