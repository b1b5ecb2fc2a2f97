// The new key is selected when its field gets the focus, ready to copy.
(function () {
  var key = document.getElementById("new-key");
  if (!key) return;
  key.addEventListener("focus", function () { key.select(); });
})();
