// The checklist's SpamAssassin line: scored by a worker job, asked for (spam.json) until
// it is no longer pending, then shown in place.
(function () {
  "use strict";
  var box = document.querySelector(".checklist[data-spam-url]");
  var line = document.getElementById("check-spam");
  if (!box || !line || line.dataset.state !== "pending") { return; }
  var tries = 0;
  function show(check) {
    line.dataset.state = check.state;
    line.className = "check check-" + check.state;
    line.querySelector(".check-state").textContent = check.state_label;
    line.querySelector(".check-detail").textContent = check.detail;
    line.querySelector(".check-hint").textContent = check.hint;
  }
  function poll() {
    tries += 1;
    fetch(box.dataset.spamUrl, {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (check) {
        show(check);
        if (check.state === "pending" && tries < 60) { setTimeout(poll, 3000); }
      })
      .catch(function () { if (tries < 60) { setTimeout(poll, 5000); } });
  }
  poll();
})();
