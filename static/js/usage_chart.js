// Coupon Usage's chart: one bar chart per currency over every day of the window (the
// server sends each day, zeros included: billing/chart.py), with labelled axes and the
// day's amount on hover. Amounts arrive as text with two decimals and are shown as sent.
(function () {
  const source = document.getElementById("usage-chart-data");
  if (!source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  // The chart's words from Django's JavaScript catalog (djangojs, loaded before this script).
  const _ = window.gettext || ((text) => text);
  const fill = window.interpolate
    || ((text, values) => text.replace(/%\((\w+)\)s/g, (m, name) => values[name]));
  const deductedIn = (currency) => fill(_("Deducted (%(currency)s)"), { currency }, true);
  const grouped = (text) => {
    const [whole, cents] = text.split(".");
    return whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "." + cents;
  };
  document.querySelectorAll("#usage-chart canvas[data-currency]").forEach((canvas) => {
    const currency = canvas.dataset.currency;
    const series = data.series.find((s) => s.currency === currency);
    if (!series) return;
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.days,
        datasets: [{
          label: deductedIn(currency),
          data: series.values.map(Number),
          backgroundColor: "#0d6efd",
          minBarLength: 0,
        }],
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: (items) => fill(_("Bill day %(day)s"), { day: items[0].label }, true),
              label: (item) => fill(_("%(amount)s %(currency)s deducted"),
                { amount: grouped(series.values[item.dataIndex]), currency }, true),
            },
          },
        },
        scales: {
          x: {
            title: { display: true, text: _("Bill day") },
            ticks: { autoSkip: true, maxRotation: 0, maxTicksLimit: 10 },
            grid: { display: false },
          },
          y: {
            beginAtZero: true,
            title: { display: true, text: deductedIn(currency) },
            ticks: { callback: (value) => `${Number(value).toLocaleString("en-US")} ${currency}` },
          },
        },
      },
    });
  });
})();
