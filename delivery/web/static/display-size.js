// Applies the candidate's chosen display size before the page paints.
(function () {
  var sizes = ["90%", "100%", "115%", "130%", "150%", "175%"];
  var stored = parseInt(localStorage.getItem("cbt-display-size") || "1", 10);
  var index = isNaN(stored) ? 1 : Math.min(Math.max(stored, 0), sizes.length - 1);
  document.documentElement.style.fontSize = sizes[index];
  window.cbtDisplaySize = {
    change: function (step) {
      index = step === 0 ? 1 : Math.min(Math.max(index + step, 0), sizes.length - 1);
      localStorage.setItem("cbt-display-size", String(index));
      document.documentElement.style.fontSize = sizes[index];
    }
  };
})();
