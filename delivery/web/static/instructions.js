// Opens the start button at the slot's start time (the server checks it too).
document.addEventListener("DOMContentLoaded", function () {
  var notice = document.getElementById("opens");
  var button = document.getElementById("start-button");
  if (!notice || !button) return;
  var openAt = Date.now() + 1000 * parseInt(notice.dataset.secondsUntilOpen || "0", 10);
  function tick() {
    var left = Math.ceil((openAt - Date.now()) / 1000);
    if (left <= 0) {
      button.disabled = false;
      notice.textContent = "You may start now.";
      return;
    }
    setTimeout(tick, 1000);
  }
  tick();
});
