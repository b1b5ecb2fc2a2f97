(function () {
  var all = document.getElementById("all-on-page");
  if (!all) return;
  all.hidden = false;
  all.addEventListener("change", function () {
    document.querySelectorAll('input[name="contact"]').forEach(function (box) { box.checked = all.checked; });
  });
})();
