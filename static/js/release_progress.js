(function () {
  const box = document.getElementById("release-progress");
  async function poll() {
    try {
      const r = await fetch(box.dataset.url, {headers: {"Accept": "application/json"}});
      const d = await r.json();
      document.getElementById("released").textContent = d.released;
      document.getElementById("progress-bar").style.width = (100 * d.released / Math.max(d.total, 1)) + "%";
      if (d.status !== "approved") { window.location.reload(); return; }
    } catch (e) {}
    setTimeout(poll, 1500);
  }
  poll();
})();
