"""The fit tables' filter: by point, site, metric and Clauset verdict, offline (inline JS).

Each row carries its values as data attributes; the controls above the table write the filter
into the URL fragment (`#filter=metric:rms,max_abs;verdict:plausible`), and the page applies
the fragment on load and whenever it changes, so a filtered view can be linked and tested
(`chromium --headless --dump-dom 'report.html#filter=...'`). A row shows when, for every key
in the filter, its value is one of the listed ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from zipfstage.point_names import site_of
from zipfstage.report.content import FitRow

#: filter keys in the order of the controls, with their labels
KEYS = (("point", "point"), ("site", "site"), ("metric", "metric"), ("verdict", "verdict"))
#: the tables a filter applies to (class names)
FILTERABLE = "filterable"


def row_values(row: FitRow) -> dict[str, str]:
    """The values a row is filtered by."""
    fit = row.fit
    return {
        "point": fit.point,
        "site": site_of(fit.point),
        "metric": fit.metric,
        "verdict": row.verdict.kind,
    }


def row_attributes(row: FitRow) -> str:
    """` data-point='...' data-site='...' ...` for a <tr>."""
    return "".join(f" data-{k}='{escape(v)}'" for k, v in row_values(row).items())


def filter_controls(rows: Sequence[FitRow]) -> str:
    """One drop-down per key with the values the rows hold (in row order), and a row count."""
    controls = []
    for key, label in KEYS:
        values = list(dict.fromkeys(row_values(r)[key] for r in rows))
        options = "".join(f"<option value='{escape(v)}'>{escape(v)}</option>" for v in values)
        controls.append(
            f"<label>{escape(label)} <select data-key='{key}'>"
            f"<option value=''>any</option>{options}</select></label>"
        )
    return (
        f"<div class='filters' id='fit-filter'>Filter: {''.join(controls)}"
        "<button type='button' data-clear>clear</button> "
        "<span class='note' id='filter-count'></span></div>"
    )


FILTER_JS = """
(function () {
  var box = document.getElementById("fit-filter");
  if (!box) return;
  var selects = box.querySelectorAll("select[data-key]");
  function parse(hash) {
    var wanted = {};
    if (hash.indexOf("#filter=") !== 0) return null;
    hash.slice(8).split(";").forEach(function (part) {
      var at = part.indexOf(":");
      if (at < 1) return;
      var key = decodeURIComponent(part.slice(0, at));
      var values = part.slice(at + 1).split(",").filter(Boolean).map(decodeURIComponent);
      if (values.length) wanted[key] = values;
    });
    return wanted;
  }
  function apply(wanted) {
    var shown = 0, total = 0;
    document.querySelectorAll("table.filterable tbody tr").forEach(function (row) {
      var ok = Object.keys(wanted).every(function (key) {
        return wanted[key].indexOf(row.getAttribute("data-" + key)) >= 0;
      });
      row.hidden = !ok;
      if (row.closest("table").id === "fit-table") { total += 1; shown += ok ? 1 : 0; }
    });
    document.getElementById("filter-count").textContent =
      "showing " + shown + " of " + total + " fits";
  }
  function show(wanted) {
    selects.forEach(function (select) {
      var values = wanted[select.dataset.key] || [];
      var joined = values.join(",");
      var known = select.querySelector("option[value='" + CSS.escape(joined) + "']");
      if (values.length > 1 && !known) {
        var option = document.createElement("option");
        option.value = joined; option.textContent = values.join(", ");
        select.appendChild(option);
      }
      select.value = joined;
    });
  }
  function fromControls() {
    var wanted = {};
    selects.forEach(function (select) {
      if (select.value) wanted[select.dataset.key] = select.value.split(",");
    });
    return wanted;
  }
  function fragment(wanted) {
    return "#filter=" + Object.keys(wanted).map(function (key) {
      return encodeURIComponent(key) + ":" + wanted[key].map(encodeURIComponent).join(",");
    }).join(";");
  }
  function fromHash() {
    var wanted = parse(location.hash);
    if (wanted !== null) { show(wanted); apply(wanted); }
  }
  selects.forEach(function (select) {
    select.addEventListener("change", function () {
      var wanted = fromControls();
      history.replaceState(null, "", fragment(wanted));
      apply(wanted);
    });
  });
  box.querySelector("[data-clear]").addEventListener("click", function () {
    history.replaceState(null, "", "#filter=");
    show({}); apply({});
  });
  window.addEventListener("hashchange", fromHash);
  apply({});
  fromHash();
})();
"""
