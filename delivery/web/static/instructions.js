// Opens the start button at the slot's start time (the server checks it too), counts down
// the time the candidate would have on starting now (a late start is deducted), and
// follows the sitting to the exam when the proctor starts it from the console.
// The page's words come from the template (data- attributes), in the page's language.
document.addEventListener("DOMContentLoaded", function () {
  var notice = document.getElementById("opens");
  var button = document.getElementById("start-button");
  var timeNow = document.getElementById("time-if-started");
  if (!notice || !button) return;
  var loaded = Date.now();
  var openAt = loaded + 1000 * parseInt(notice.dataset.secondsUntilOpen || "0", 10);
  var pollEvery = 1000 * Math.max(2, parseInt(notice.dataset.clockPollSeconds || "5", 10));
  var secondsNow = timeNow ? parseFloat(timeNow.dataset.seconds || "0") : 0;
  var countsDown = timeNow && timeNow.dataset.countsDown === "1";

  // The same format as the sitting's timer and the proctor's board: h:mm:ss.
  function formatTime(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return h + ":" + String(m).padStart(2, "0") + ":" + String(s).padStart(2, "0");
  }

  function tick() {
    var now = Date.now();
    if (timeNow && countsDown) timeNow.textContent = formatTime(secondsNow - (now - loaded) / 1000);
    if (button.disabled && openAt <= now) {
      button.disabled = false;
      notice.textContent = notice.dataset.openText;
      // From the slot's start on, a late start is deducted: the time shown counts down.
      countsDown = timeNow && timeNow.dataset.deducts === "1";
      loaded = now;
    }
    setTimeout(tick, 1000);
  }
  function poll() {
    fetch("/api/sitting/clock", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (clock) {
        if (clock && (clock.status === "in_progress" || clock.status === "paused")) window.location.href = "/sitting";
        else if (clock && clock.result_url) window.location.href = clock.result_url;
        else setTimeout(poll, pollEvery);
      }, function () { setTimeout(poll, pollEvery); });
  }
  tick();
  setTimeout(poll, pollEvery);
});
