// Opens the start button at the slot's start time (the server checks it too), and
// follows the sitting to the exam when the proctor starts it from the console.
document.addEventListener("DOMContentLoaded", function () {
  var notice = document.getElementById("opens");
  var button = document.getElementById("start-button");
  if (!notice || !button) return;
  var openAt = Date.now() + 1000 * parseInt(notice.dataset.secondsUntilOpen || "0", 10);
  var pollEvery = 1000 * Math.max(2, parseInt(notice.dataset.clockPollSeconds || "5", 10));
  function tick() {
    var left = Math.ceil((openAt - Date.now()) / 1000);
    if (left <= 0) {
      button.disabled = false;
      notice.textContent = "You may start now.";
      return;
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
