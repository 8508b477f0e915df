// mlx-report HTML: sortable tables, a collapsible layer tree, a zoomable diagram. No dependencies.
(function () {
  "use strict";
  function cellValue(row, i) {
    var c = row.children[i];
    if (!c) return "";
    var v = c.getAttribute("data-sort");
    if (v !== null && v !== "" && !isNaN(Number(v))) return Number(v);
    return (v !== null ? v : c.textContent).toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, i) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var asc = !th.classList.contains("asc");
        table.querySelectorAll("thead th").forEach(function (h) { h.classList.remove("asc", "desc"); });
        th.classList.add(asc ? "asc" : "desc");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, i), y = cellValue(b, i);
          if (x < y) return asc ? -1 : 1;
          if (x > y) return asc ? 1 : -1;
          return 0;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.querySelectorAll("table.tree-table").forEach(function (table) {
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var kids = {};
    rows.forEach(function (r) {
      var p = r.getAttribute("data-parent");
      if (p) (kids[p] = kids[p] || []).push(r);
    });
    function setHidden(id, hidden) {
      (kids[id] || []).forEach(function (r) {
        r.classList.toggle("collapsed-row", hidden);
        var b = r.querySelector("button.tog");
        var open = !b || b.getAttribute("aria-expanded") === "true";
        setHidden(r.getAttribute("data-id"), hidden || !open);
      });
    }
    function toggle(row, open) {
      var b = row.querySelector("button.tog");
      if (!b) return;
      b.setAttribute("aria-expanded", open ? "true" : "false");
      b.textContent = open ? "▾" : "▸";
      setHidden(row.getAttribute("data-id"), !open);
    }
    rows.forEach(function (r) {
      var b = r.querySelector("button.tog");
      if (b) b.addEventListener("click", function () { toggle(r, b.getAttribute("aria-expanded") !== "true"); });
    });
    var section = table.closest("section");
    section.querySelectorAll("[data-tree]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var open = btn.getAttribute("data-tree") === "expand";
        rows.forEach(function (r) { if (r.getAttribute("data-parent")) toggle(r, open); });
        rows.forEach(function (r) { if (!r.getAttribute("data-parent")) toggle(r, true); });
      });
    });
  });
  document.querySelectorAll("figure.diagram").forEach(function (fig) {
    var box = fig.querySelector(".zoom"), svg = box && box.querySelector("svg");
    if (!svg || !svg.viewBox || !svg.viewBox.baseVal) return;
    var base = svg.viewBox.baseVal, orig = [base.x, base.y, base.width, base.height];
    var vb = orig.slice();
    function apply() { svg.setAttribute("viewBox", vb.join(" ")); box.classList.toggle("zoomed", vb[2] < orig[2]); }
    function zoom(f, cx, cy) {
      var w = Math.min(orig[2] * 1.5, Math.max(orig[2] / 40, vb[2] * f));
      var h = w * vb[3] / vb[2];
      cx = cx === undefined ? vb[0] + vb[2] / 2 : cx; cy = cy === undefined ? vb[1] + vb[3] / 2 : cy;
      vb = [cx - (cx - vb[0]) * w / vb[2], cy - (cy - vb[1]) * h / vb[3], w, h];
      apply();
    }
    function point(e) {
      var r = svg.getBoundingClientRect();
      return [vb[0] + (e.clientX - r.left) / r.width * vb[2], vb[1] + (e.clientY - r.top) / r.height * vb[3]];
    }
    box.addEventListener("wheel", function (e) {
      e.preventDefault();
      var p = point(e);
      zoom(e.deltaY < 0 ? 0.8 : 1.25, p[0], p[1]);
    }, { passive: false });
    var drag = null;
    box.addEventListener("mousedown", function (e) { drag = [e.clientX, e.clientY, vb[0], vb[1]]; box.style.cursor = "grabbing"; });
    window.addEventListener("mouseup", function () { drag = null; box.style.cursor = ""; });
    window.addEventListener("mousemove", function (e) {
      if (!drag) return;
      var r = svg.getBoundingClientRect();
      vb[0] = drag[2] - (e.clientX - drag[0]) / r.width * vb[2];
      vb[1] = drag[3] - (e.clientY - drag[1]) / r.height * vb[3];
      apply();
    });
    fig.querySelectorAll("[data-zoom]").forEach(function (b) {
      b.addEventListener("click", function () {
        var k = b.getAttribute("data-zoom");
        if (k === "reset") { vb = orig.slice(); apply(); } else zoom(k === "in" ? 0.7 : 1.4);
      });
    });
  });
})();
