// The live board: fetches the board's live part every few seconds and swaps it in.
// One request per proctor per poll, answered by one query for the whole centre.
// Focus stays on the link it was on, so a keyboard user is not thrown about.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("board-live");
    if (!box) return;
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
          warning.hidden = true;
        })
        .catch(function () { warning.hidden = false; })
        .then(function () { setTimeout(poll, every); });
    }
    setTimeout(poll, every);
  });
})();
