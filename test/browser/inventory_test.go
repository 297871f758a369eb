package browser

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// The inventory page (js/inventory.js) in #inventory, opened by #inventory.
const (
	inventoryNavSel    = `#views a[data-view="inventory"]`
	inventoryLabelsSel = `#inventory-labels`
	inventoryStateSel  = `#inventory button[data-state=%q]`
	inventorySortSel   = `#inventory th[data-col=%q] button.sort`
	// inventoryRowsJS is the table as shown: each row's id, state and
	// cells (the value behind each, and its text); null before the table.
	inventoryRowsJS = `(() => {
  const table = document.querySelector("#inventory table.inventory");
  if (!table || document.querySelector("#inventory").hidden) return null;
  return [...table.querySelectorAll("tbody tr")].map((tr) => ({ id: tr.dataset.id, state: tr.dataset.state,
    cls: tr.className, cells: Object.fromEntries([...tr.querySelectorAll("td")].map((td) =>
      [td.dataset.col, { value: td.dataset.value, text: td.textContent.trim() }])) }));
})()`
	// inventoryIDsJS is truthy when the table shows exactly the rows %s
	// (a JSON list of ids, in order).
	inventoryIDsJS = `(() => { const r = ` + inventoryRowsJS + `; return r !== null && JSON.stringify(r.map((x) => x.id)) === JSON.stringify(%s); })()`
	// inventoryExportJS fetches the page's CSV link, as bytes (the text
	// decoder would drop the byte order mark).
	inventoryExportJS = `(async () => {
  const a = document.querySelector("#inventory-export");
  const r = await fetch(a.href);
  const b = new Uint8Array(await r.arrayBuffer());
  return { href: a.getAttribute("href"), status: r.status, type: r.headers.get("Content-Type") || "",
    bom: b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf, body: new TextDecoder("utf-8", { ignoreBOM: false }).decode(b) };
})()`
)

// apiInventoryRow is the part of GET /api/v1/inventory the test reads.
type apiInventoryRow struct {
	ID            string            `json:"id"`
	State         string            `json:"state"`
	Stale         bool              `json:"stale"`
	Labels        map[string]string `json:"labels"`
	Version       string            `json:"version"`
	Arch          string            `json:"arch"`
	ConfigVersion *uint64           `json:"config_version"`
	Devices       int               `json:"devices"`
	FaultyDevices int               `json:"faulty_devices"`
	BufferMax     int64             `json:"buffer_max_bytes"`
	ClockQuality  string            `json:"clock_quality"`
}

type inventoryCell struct{ Value, Text string }

type inventoryShownRow struct {
	ID, State, Cls string
	Cells          map[string]inventoryCell
}

// TestInventoryPage: the inventory shows every gateway as the API does,
// filters by label (typed, or a click on a label) and by state, sorts by a
// column, marks a hung gateway stale and a stopped one offline, and its CSV link downloads the same
// rows, UTF-8 with a byte order mark; in both languages.
func TestInventoryPage(t *testing.T) {
	ids := func(list ...string) string {
		b, err := json.Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	s := StartStack(t)
	p := OpenPage(t, s.URL, 1280, 900)
	p.Click(t, inventoryNavSel)
	p.WaitJS(t, "the inventory with both gateways", fmt.Sprintf(inventoryIDsJS, ids("farm-north", "orchard-south")), waitLong)

	// What the page shows is what the API says, for what does not change
	// between two refreshes.
	var api struct {
		Gateways []apiInventoryRow `json:"gateways"`
	}
	if err := testenv.GetJSON(s.URL+"api/v1/inventory", &api); err != nil {
		t.Fatal(err)
	}
	shown := Eval[[]inventoryShownRow](t, p, inventoryRowsJS)
	if len(api.Gateways) != 2 || len(shown) != 2 {
		t.Fatalf("api %+v, shown %+v", api.Gateways, shown)
	}
	for i, g := range api.Gateways {
		row := shown[i]
		var labels []string
		for _, k := range slices.Sorted(maps.Keys(g.Labels)) {
			labels = append(labels, k+":"+g.Labels[k])
		}
		want := map[string]string{"id": g.ID, "version": g.Version, "arch": g.Arch, "devices": strconv.Itoa(g.Devices),
			"faulty": strconv.Itoa(g.FaultyDevices), "labels": strings.Join(labels, " ")}
		for col, v := range want {
			if row.Cells[col].Value != v {
				t.Errorf("%s: %s shows %q, the API says %q", g.ID, col, row.Cells[col].Value, v)
			}
		}
		if g.State != "online" || g.Arch == "" || g.BufferMax <= 0 || g.ClockQuality == "" || g.ConfigVersion == nil ||
			*g.ConfigVersion != 0 || len(g.Labels) != 2 || row.State != "online" || row.Cells["config"].Text != "local file" {
			t.Errorf("%s: api %+v, shown %+v", g.ID, g, row)
		}
	}

	// A label typed in the box, then one more by a click on a label.
	p.Click(t, inventoryLabelsSel)
	p.do(t, "type a label", chromedp.SendKeys(chromedp.CSS(inventoryLabelsSel), "county:acheng\r"))
	p.WaitJS(t, "only farm-north", fmt.Sprintf(inventoryIDsJS, ids("farm-north")), waitLong)
	p.Click(t, `#inventory .label-chip[data-label="kind:farm"]`)
	p.WaitJS(t, "both labels in the box", `document.querySelector("#inventory-labels").value === "county:acheng kind:farm"`, waitShort)
	p.WaitJS(t, "still only farm-north", fmt.Sprintf(inventoryIDsJS, ids("farm-north")), waitLong)
	exp := EvalAsync[struct {
		Href, Type, Body string
		Status           int
		Bom              bool
	}](t, p, inventoryExportJS)
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(exp.Body, "\uFEFF"))).ReadAll()
	if err != nil || exp.Status != 200 || !exp.Bom || exp.Type != "text/csv; charset=utf-8" ||
		exp.Href != "/api/v1/inventory.csv?label=county%3Aacheng&label=kind%3Afarm" || len(recs) != 2 ||
		recs[0][0] != "id" || recs[1][0] != "farm-north" || recs[1][1] != "北区农场 1 号站" {
		t.Fatalf("CSV %+v (%v): %q", exp, err, recs)
	}
	p.Click(t, inventoryLabelsSel)
	p.do(t, "clear the labels", chromedp.SendKeys(chromedp.CSS(inventoryLabelsSel), kb.End+strings.Repeat(kb.Backspace, 40)+"\r"))
	p.WaitJS(t, "both again", fmt.Sprintf(inventoryIDsJS, ids("farm-north", "orchard-south")), waitLong)

	// Sorted by a column: by id, ascending at first; a click, descending.
	if got := Eval[string](t, p, `document.querySelector("#inventory th[data-col=id]").getAttribute("aria-sort")`); got != "ascending" {
		t.Errorf("the id column's aria-sort is %q at first, want ascending", got)
	}
	p.Click(t, fmt.Sprintf(inventorySortSel, "id"))
	p.WaitJS(t, "descending by id", fmt.Sprintf(inventoryIDsJS, ids("orchard-south", "farm-north"))+
		` && document.querySelector("#inventory th[data-col=id]").getAttribute("aria-sort") === "descending"`, waitShort)

	// A gateway that hangs (SIGSTOP: its MQTT session lives on for a while)
	// is marked stale after two heartbeats; it comes back when it resumes.
	hung := s.gateways["orchard-south"].Cmd.Process
	t.Cleanup(func() { hung.Signal(syscall.SIGCONT) })
	if err := hung.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	p.WaitJS(t, "orchard-south marked stale", `(() => { const r = `+inventoryRowsJS+`;
  return r && r.some((x) => x.id === "orchard-south" && x.state === "stale" && x.cls.includes("inv-stale") && x.cells.state.text === "no response"); })()`, waitLong)
	if err := hung.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	p.WaitJS(t, "orchard-south online again", `(() => { const r = `+inventoryRowsJS+`;
  return r && r.some((x) => x.id === "orchard-south" && x.state === "online"); })()`, waitLong)

	// A gateway that stops is marked offline, and the state filter finds it.
	s.StopGateway(t, "orchard-south")
	p.WaitJS(t, "orchard-south marked offline", `(() => { const r = `+inventoryRowsJS+`;
  return r && r.some((x) => x.id === "orchard-south" && x.state === "offline" && x.cls.includes("inv-offline") && x.cells.state.text === "offline"); })()`, waitLong)
	p.Click(t, fmt.Sprintf(inventoryStateSel, "offline"))
	p.WaitJS(t, "only the offline one", fmt.Sprintf(inventoryIDsJS, ids("orchard-south")), waitLong)
	p.Click(t, fmt.Sprintf(inventoryStateSel, "online"))
	p.WaitJS(t, "only the online one", fmt.Sprintf(inventoryIDsJS, ids("farm-north")), waitLong)
	p.Click(t, fmt.Sprintf(inventoryStateSel, "all"))
	p.WaitJS(t, "both", fmt.Sprintf(inventoryIDsJS, ids("orchard-south", "farm-north")), waitLong)
	path := p.Screenshot(t, "console-inventory-1280x900")
	if w, h := pngSize(t, path); w != 1280 || h < 900 {
		t.Errorf("%s is %d×%d", path, w, h)
	}

	// In Chinese.
	p.Click(t, fmt.Sprintf(langSel, "zh"))
	p.WaitJS(t, "the inventory in Chinese", `document.querySelector("#inventory h2").textContent === "设备清单" &&
  document.querySelector("#inventory tr[data-id=orchard-south] td[data-col=state]").textContent === "离线" &&
  document.querySelector("#views a[data-view=inventory]").getAttribute("aria-current") === "page"`, waitLong)
	p.Screenshot(t, "console-inventory-zh-1280x900")

	// A gateway's link goes back to the map, on that gateway.
	p.Click(t, `#inventory tr[data-id="farm-north"] td[data-col=id] a`)
	p.WaitJS(t, "the map view on farm-north", `!document.body.classList.contains("view-inventory") &&
  document.querySelector("#inventory").hidden && location.hash === "#station=farm-north"`, waitLong)
}
