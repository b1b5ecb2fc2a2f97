/* Draws the charts of the dashboard and of a campaign's report with Chart.js (served by
   Tidings from static/vendor/chartjs). Each <canvas data-chart="line|bar"
   data-source="ID"> reads its figures from the JSON of the element ID (Django's
   json_script): no inline script, so the Content-Security-Policy stays strict. The
   same figures are in a table beside each chart. */
(function () {
  "use strict";
  var COLOURS = {
    sent: "#1f5fa8",
    open: "#2e7d32",
    click: "#b35c00",
    bounce: "#b00020",
    unsubscribe: "#6a1b9a",
    complaint: "#333333",
    subscribed: "#2e7d32",
    unsubscribed: "#b00020"
  };

  function draw(canvas) {
    var source = document.getElementById(canvas.getAttribute("data-source"));
    if (!source || typeof window.Chart === "undefined") {
      return;
    }
    var figures = JSON.parse(source.textContent);
    var many = figures.labels.length > 24;
    var datasets = figures.datasets.map(function (set) {
      var colour = COLOURS[set.key] || "#333333";
      return {
        label: set.label,
        data: set.data,
        borderColor: colour,
        backgroundColor: colour,
        borderWidth: 2,
        pointRadius: many ? 0 : 3,
        tension: 0.2
      };
    });
    new window.Chart(canvas, {
      type: canvas.getAttribute("data-chart") || "line",
      data: { labels: figures.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom" } },
        scales: {
          x: {
            ticks: { autoSkip: true, maxRotation: 0, autoSkipPadding: 12 },
            title: { display: Boolean(figures.xTitle), text: figures.xTitle || "" }
          },
          y: {
            beginAtZero: true,
            ticks: { precision: 0 },
            title: { display: Boolean(figures.yTitle), text: figures.yTitle || "" }
          }
        }
      }
    });
    canvas.setAttribute("data-drawn", "true");
  }

  document.querySelectorAll("canvas[data-chart]").forEach(draw);
})();
