// The live progress of a sending campaign: polls progress.json, and reloads the page
// once the campaign is no longer sending (the controls and the report link change).
(function () {
  "use strict";
  var box = document.querySelector(".progress-box");
  if (!box) { return; }
  var bar = document.getElementById("p-bar");
  function show(p) {
    ["sent", "failed", "skipped", "remaining", "rate_per_minute", "unknown"].forEach(function (k) {
      var el = document.getElementById("p-" + k);
      if (el) { el.textContent = p[k]; }
    });
    var done = p.total - p.remaining;
    bar.max = p.total || 1;
    bar.value = done;
    document.getElementById("p-percent").textContent = p.total ? Math.floor(100 * done / p.total) : 0;
  }
  function poll() {
    fetch(box.dataset.url, {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (p) {
        show(p);
        if (p.status === "sending") { setTimeout(poll, 1500); } else { window.location.reload(); }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1500);
})();
