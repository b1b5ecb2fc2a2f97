(function () {
  // The live size: the builder's rows to the count endpoint, 400 ms after the last change.
  var form = document.getElementById("segment-form");
  var out = document.getElementById("segment-count");
  var problem = document.getElementById("count-error");
  var timer = null;
  // Each count asked is numbered: only the last one asked is shown, whatever order the
  // answers come back in (a slow answer to an older rule never overwrites a newer one).
  var asked = 0;
  function refresh() {
    var data = new FormData(form);
    var mine = ++asked;
    fetch(form.dataset.countUrl, { method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRFToken": data.get("csrfmiddlewaretoken") } })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (mine !== asked) { return; }
        if (body.error) { problem.textContent = body.error; out.textContent = "—"; }
        else { problem.textContent = ""; out.textContent = body.count; }
      });
  }
  function later() { clearTimeout(timer); timer = setTimeout(refresh, 400); }
  // A declared attribute offers the operators of its type only (numbers: greater and
  // less than; dates: before and after; yes/no: is, is not).
  var types = JSON.parse(document.getElementById("attribute-types").textContent);
  var opsByKind = JSON.parse(document.getElementById("ops-by-kind").textContent);
  function fitOperators(row) {
    var field = row.querySelector('select[name="c_field"]');
    var key = row.querySelector('input[name="c_key"]');
    var op = row.querySelector('select[name="c_op"]');
    if (!field || !key || !op) { return; }
    var kind = field.value === "attribute" ? types[key.value.trim()] : undefined;
    var allowed = kind ? opsByKind[kind] : null;
    Array.prototype.forEach.call(op.options, function (option) {
      var fits = !allowed || allowed.indexOf(option.value) >= 0;
      option.hidden = !fits;
      option.disabled = !fits;
    });
    if (allowed && allowed.indexOf(op.value) < 0) { op.value = allowed[0]; }
  }
  function fitAll() { form.querySelectorAll("table.rows tbody tr").forEach(fitOperators); }
  fitAll();
  // Another empty row, labelled for its number (without JavaScript: save for more rows).
  var add = document.getElementById("add-condition");
  add.hidden = false;
  add.addEventListener("click", function () {
    var body = form.querySelector("table.rows tbody");
    var row = body.rows[body.rows.length - 1].cloneNode(true);
    var number = body.rows.length + 1;
    row.querySelectorAll("input, select").forEach(function (field) {
      field.value = field.tagName === "SELECT" ? field.options[0].value : "";
      field.setAttribute("aria-label", field.getAttribute("aria-label").replace(/\d+$/, number));
    });
    body.appendChild(row);
  });
  form.addEventListener("input", function (event) {
    var row = event.target.closest("tr");
    if (row) { fitOperators(row); }
    later();
  });
  form.addEventListener("change", function (event) {
    var row = event.target.closest("tr");
    if (row) { fitOperators(row); }
    later();
  });
})();
