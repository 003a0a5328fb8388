// The live parts of the console: the board's seat map, and the facts on a candidate's panel.
// Each is fetched every few seconds and swapped in: one request per proctor per poll, answered
// by one query for the whole centre (the board) or for the one booking (the panel). Focus stays
// on the link it was on, so a keyboard user is not thrown about. On a panel, a state that changed
// under the proctor (the candidate logged in, the time ran out) is said, with a link to the actions
// that now apply; the forms are not replaced, so nothing typed is lost.
(function () {
  "use strict";

  function live(box, swapped) {
    var warning = document.getElementById("board-connection");
    var every = 1000 * Math.max(1, parseInt(box.dataset.pollSeconds || "3", 10));

    function poll() {
      fetch(box.dataset.pollUrl, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.redirected) { window.location.reload(); throw new Error("signed out"); }
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (html) {
          var focused = document.activeElement && box.contains(document.activeElement) ? document.activeElement.id : null;
          box.innerHTML = html;
          if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
          if (warning) warning.hidden = true;
          if (swapped) swapped();
        })
        .catch(function () { if (warning) warning.hidden = false; })
        .then(function () { setTimeout(poll, every); });
    }
    setTimeout(poll, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var board = document.getElementById("board-live");
    if (board) live(board);
    var panel = document.getElementById("panel-live");
    if (panel) {
      var changed = document.getElementById("panel-changed");
      live(panel, function () {
        var status = document.getElementById("panel-status");
        if (changed && status && status.dataset.status !== panel.dataset.status) changed.hidden = false;
      });
    }
  });
})();
