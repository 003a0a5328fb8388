// Applies the display size before the page paints. A page may name its owner (the
// sitting) and a starting size (larger text is an accommodation on the booking):
// a size chosen by an earlier candidate at the same PC does not carry over.
(function () {
  var sizes = ["90%", "100%", "115%", "130%", "150%", "175%"];
  var root = document.documentElement;
  var owner = root.dataset.displayOwner || "";
  var fallback = parseInt(root.dataset.displaySize || "1", 10);
  var stored = null;
  try {
    if ((localStorage.getItem("cbt-display-owner") || "") === owner) stored = localStorage.getItem("cbt-display-size");
  } catch (e) { stored = null; }
  var wanted = stored === null ? fallback : parseInt(stored, 10);
  var index = isNaN(wanted) ? 1 : Math.min(Math.max(wanted, 0), sizes.length - 1);
  root.style.fontSize = sizes[index];
  window.cbtDisplaySize = {
    change: function (step) {
      index = step === 0 ? fallback : Math.min(Math.max(index + step, 0), sizes.length - 1);
      try {
        localStorage.setItem("cbt-display-size", String(index));
        localStorage.setItem("cbt-display-owner", owner);
      } catch (e) { /* private mode: the size holds for this page only */ }
      root.style.fontSize = sizes[index];
    }
  };
})();
