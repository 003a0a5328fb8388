// The booking calendar: each Book button's form carries the accommodations chosen below the table.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("table.calendar form").forEach(function (form) {
    form.addEventListener("submit", function () {
      var large = document.getElementById("large_text");
      var seat = document.getElementById("seat_need");
      form.querySelectorAll("[data-mirror]").forEach(function (input) {
        if (input.dataset.mirror === "large_text" && large) input.value = large.checked ? "yes" : "";
        if (input.dataset.mirror === "seat_need" && seat) input.value = seat.value;
      });
    });
  });
});
