(function () {
  var button = document.getElementById("copy"), area = document.getElementById("snippet");
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(area.value).then(function () {
      document.getElementById("copied").textContent = "Copied.";
    }, function () { area.select(); });
  });
})();
