// A table sorted by any column (click its heading), for the statistics
// (stats.js) and the inventory (inventory.js). Each cell says the value
// behind it (data-value) and its column (data-col); each heading its
// column and aria-sort.
import { el } from "./util.js";

const missing = (v) => v === null || v === undefined;

// sortRows sorts rows by the column's value, dir 1 ascending or -1
// descending; missing values last whichever the direction; ties by tie.
export function sortRows(rows, col, dir, tie) {
  return rows.slice().sort((a, b) => {
    const x = col.value(a), y = col.value(b);
    if (missing(x)) return missing(y) ? tie(a, b) : 1;
    if (missing(y)) return -1;
    const c = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
    return c * dir || tie(a, b);
  });
}

// sortableTable draws rows under columns ({ key, label, value(r), show(r),
// num, title(r) }), sorted by sort.col in sort.dir; a click on a heading
// calls onSort(key). rowAttrs(r) gives each row's attributes.
export function sortableTable({ cls, columns, rows, sort, onSort, tie, rowAttrs }) {
  const tr = el("tr");
  for (const c of columns) {
    const aria = c.key === sort.col ? (sort.dir > 0 ? "ascending" : "descending") : "none";
    tr.append(el("th", { "aria-sort": aria, "data-col": c.key, class: c.num ? "num" : "" },
      el("button", { type: "button", class: "sort", onclick: () => onSort(c.key) }, c.label)));
  }
  const body = el("tbody");
  const col = columns.find((c) => c.key === sort.col) || columns[0];
  for (const r of sortRows(rows, col, sort.dir, tie)) {
    const row = el("tr", rowAttrs(r));
    for (const c of columns) {
      const v = c.value(r);
      row.append(el("td", {
        "data-col": c.key, "data-value": missing(v) ? "" : String(v), class: c.num ? "num" : "",
        title: c.title ? c.title(r) : null,
      }, c.show(r)));
    }
    body.append(row);
  }
  return el("table", { class: cls }, el("thead", {}, tr), body);
}

// nextSort is the order after a click on column key: the other direction
// on the same column, ascending on another.
export function nextSort(sort, key) {
  return { col: key, dir: key === sort.col ? -sort.dir : 1 };
}
