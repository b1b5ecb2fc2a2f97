// A form's fields that depend on one choice (a trigger, a step's kind): only the chosen
// one's fieldset shows, and the others are disabled, so only its fields are sent.
// Without this script every fieldset shows, each under its name, and the server reads
// only the chosen one's.
(function () {
  document.querySelectorAll(".grouped[data-switch]").forEach(function (form) {
    var choices = form.querySelectorAll('[name="' + form.dataset.switch + '"]');
    if (!choices.length) { return; }
    function chosenValue() {
      // A select, or radio buttons (the A/B test's kind): the one checked.
      var checked = form.querySelector('[name="' + form.dataset.switch + '"]:checked');
      return choices[0].type === "radio" ? (checked ? checked.value : "") : choices[0].value;
    }
    function show() {
      var value = chosenValue();
      form.querySelectorAll("fieldset[data-choices]").forEach(function (fieldset) {
        var chosen = fieldset.dataset.choices.split(" ").indexOf(value) !== -1;
        fieldset.hidden = !chosen;
        fieldset.disabled = !chosen;
      });
    }
    choices.forEach(function (choice) { choice.addEventListener("change", show); });
    show();
  });
  // A field that only some values of another field use (a condition's value: only
  // "equals" and "contains"): shown and sent for those values only.
  document.querySelectorAll(".grouped [data-when]").forEach(function (field) {
    var form = field.closest(".grouped");
    var choice = form.querySelector('[name="' + field.dataset.when + '"]');
    if (!choice) { return; }
    var wrapper = field.closest("div") || field;
    function show() {
      var used = field.dataset.values.split(" ").indexOf(choice.value) !== -1;
      wrapper.hidden = !used;
      field.disabled = !used;
    }
    choice.addEventListener("change", show);
    show();
  });
})();
